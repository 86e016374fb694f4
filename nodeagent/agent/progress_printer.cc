#include "nodeagent/agent/progress_printer.h"

#include <unistd.h>

#include <cstdio>

#include <nlohmann/json.hpp>

namespace bunker::agent {

std::string HumanBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.2f %s", v, units[u]);
  return buf;
}

ProgressPrinter::ProgressPrinter(const mover::Progress* progress, std::string verb, bool json)
    : progress_(progress),
      verb_(std::move(verb)),
      json_(json),
      tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()) {
  if (json_ || tty_) thread_ = std::thread([this] { Loop(); });
}

ProgressPrinter::~ProgressPrinter() { Stop(); }

void ProgressPrinter::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
    Print(true);
  }
}

void ProgressPrinter::Loop() {
  std::unique_lock lock(mu_);
  auto period = json_ ? std::chrono::milliseconds(1000) : std::chrono::milliseconds(500);
  while (!cv_.wait_for(lock, period, [this] { return stop_; })) {
    Print(false);
  }
}

void ProgressPrinter::Print(bool final) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  uint64_t done = progress_->bytes_done.load();
  uint64_t total = progress_->bytes_total.load();
  double rate = secs > 0 ? done / secs : 0;
  double eta = (rate > 0 && total > done) ? (total - done) / rate : 0;
  if (json_) {
    nlohmann::json j = {{"type", "progress"},
                        {"verb", verb_},
                        {"bytes_done", done},
                        {"bytes_total", total},
                        {"bytes_new", progress_->bytes_new.load()},
                        {"files_done", progress_->files_done.load()},
                        {"elapsed_seconds", secs},
                        {"bytes_per_second", rate},
                        {"eta_seconds", eta},
                        {"final", final}};
    std::fprintf(stderr, "%s\n", j.dump().c_str());
    return;
  }
  double pct = total ? 100.0 * done / total : 0;
  int width = 30;
  int filled = total ? static_cast<int>(width * done / total) : 0;
  std::string bar(filled, '#');
  bar.append(width - filled, '.');
  std::fprintf(stderr, "\r%s [%s] %5.1f%%  %s / %s  %s/s  ETA %s   ", verb_.c_str(), bar.c_str(),
               pct, HumanBytes(done).c_str(), HumanBytes(total).c_str(),
               HumanBytes(static_cast<uint64_t>(rate)).c_str(),
               final ? "0s" : (std::to_string(static_cast<int>(eta)) + "s").c_str());
  if (final) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

}  // namespace bunker::agent

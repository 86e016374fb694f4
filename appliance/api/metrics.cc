#include "appliance/api/metrics.h"

#include <fmt/format.h>

namespace bunker::api {

void Metrics::RecordRequest(const std::string& method, const std::string& route, int status,
                            double seconds) {
  std::lock_guard lock(mu_);
  ++requests_[{method, route, status}];
  Histogram& h = latency_[route];
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      ++h.buckets[i];
      break;
    }
  }
  ++h.count;
  h.sum += seconds;
}

std::string Metrics::RenderPrometheus() const {
  std::lock_guard lock(mu_);
  std::string out;
  out += "# HELP bunker_http_requests_total HTTP requests handled, by method, route and status.\n";
  out += "# TYPE bunker_http_requests_total counter\n";
  for (const auto& [key, count] : requests_) {
    const auto& [method, route, status] = key;
    out +=
        fmt::format("bunker_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{}\"}} {}\n",
                    method, route, status, count);
  }
  out += "# HELP bunker_http_request_duration_seconds Time to handle a request, by route.\n";
  out += "# TYPE bunker_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += h.buckets[i];
      out +=
          fmt::format("bunker_http_request_duration_seconds_bucket{{route=\"{}\",le=\"{}\"}} {}\n",
                      route, kBuckets[i], cumulative);
    }
    out +=
        fmt::format("bunker_http_request_duration_seconds_bucket{{route=\"{}\",le=\"+Inf\"}} {}\n",
                    route, h.count);
    out +=
        fmt::format("bunker_http_request_duration_seconds_sum{{route=\"{}\"}} {}\n", route, h.sum);
    out += fmt::format("bunker_http_request_duration_seconds_count{{route=\"{}\"}} {}\n", route,
                       h.count);
  }
  return out;
}

std::string RenderBackupMetrics(const std::map<std::string, int64_t>& by_state, int64_t bytes_total,
                                int64_t bytes_moved) {
  std::string out;
  out += "# HELP bunker_backups Backups known to the appliance, by state.\n";
  out += "# TYPE bunker_backups gauge\n";
  for (const char* state : {"pending", "running", "succeeded", "partial", "failed", "deleting"}) {
    auto it = by_state.find(state);
    out += fmt::format("bunker_backups{{state=\"{}\"}} {}\n", state,
                       it == by_state.end() ? 0 : it->second);
  }
  out += "# HELP bunker_backup_logical_bytes Logical bytes covered by the recorded backups.\n";
  out += "# TYPE bunker_backup_logical_bytes gauge\n";
  out += fmt::format("bunker_backup_logical_bytes {}\n", bytes_total);
  out +=
      "# HELP bunker_backup_moved_bytes Bytes the recorded backups moved to their locations "
      "(new data after deduplication).\n";
  out += "# TYPE bunker_backup_moved_bytes gauge\n";
  out += fmt::format("bunker_backup_moved_bytes {}\n", bytes_moved);
  return out;
}

}  // namespace bunker::api

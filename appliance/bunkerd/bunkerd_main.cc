// bunkerd: the appliance daemon. Thin: parses the command line and config,
// wires store, secret box, handler and HTTPS server together, and speaks the
// systemd notify protocol.
//
//   bunkerd init --data-dir D --admin-password-file F [--admin-name admin]
//   bunkerd serve [--config bunkerd.yaml] [--data-dir D] [--listen host:port]
//                 [--tls-cert F --tls-key F] [--log-level L]
//                 [--log-target auto|journal|stderr]
//
// Logs go to the systemd journal (sd_journal_send, through spdlog's systemd
// sink, with the level as PRIORITY) when --log-target is journal, or when it
// is auto and JOURNAL_STREAM is set (systemd connected stderr to the
// journal); otherwise to stderr.
//
// Exit codes: 0 success, 1 failure, 2 usage or configuration error.

#include <signal.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include <spdlog/sinks/systemd_sink.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "appliance/api/handler.h"
#include "appliance/api/server.h"
#include "appliance/api/tls_cert.h"
#include "appliance/auth/password.h"
#include "appliance/auth/secret_box.h"
#include "appliance/bunkerd/config.h"
#include "appliance/store/store.h"
#include "nodeagent/core/util/log.h"

namespace bunker::bunkerd {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

Status MakePrivateDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return IOError("create data directory " + dir + ": " + ec.message());
  }
  if (chmod(dir.c_str(), 0700) != 0) {
    return ErrnoStatus("chmod 700 " + dir, errno);
  }
  return Status::Ok();
}

std::string DbPath(const std::string& dir) { return dir + "/bunker.db"; }
std::string KeyPath(const std::string& dir) { return dir + "/secret.key"; }

// Logging to the journal or stderr (see the file comment). False for an
// unknown target.
bool SetUpLogging(const std::string& target, const std::string& level) {
  bool journal = target == "journal" || (target == "auto" && std::getenv("JOURNAL_STREAM"));
  if (target != "journal" && target != "auto" && target != "stderr") {
    bunker::InitLogging(level);
    return false;
  }
  if (!journal) {
    bunker::InitLogging(level);
    return true;
  }
  auto sink = std::make_shared<spdlog::sinks::systemd_sink_mt>("bunkerd");
  auto logger = std::make_shared<spdlog::logger>("bunker", sink);
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
  return true;
}

int Fail(const Status& st, int code = kExitFailure) {
  spdlog::error("{}", st.ToString());
  return code;
}

int Init(const std::string& data_dir, const std::string& password_file,
         const std::string& admin_name) {
  std::ifstream in(password_file);
  if (!in) {
    return Fail(NotFound("admin password file " + password_file + " cannot be read"), kExitUsage);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string password = ss.str();
  while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) {
    password.pop_back();
  }
  if (password.size() < 8) {
    return Fail(InvalidArgument("the admin password must be at least 8 characters"), kExitUsage);
  }
  if (Status st = MakePrivateDir(data_dir); !st.ok()) {
    return Fail(st);
  }
  auto store = store::OpenSqliteStore(DbPath(data_dir));
  if (!store.ok()) {
    return Fail(store.status());
  }
  auto box = auth::SecretBox::OpenOrCreate(KeyPath(data_dir));
  if (!box.ok()) {
    return Fail(box.status());
  }
  auto users = (*store)->CountUsers();
  if (!users.ok()) {
    return Fail(users.status());
  }
  if (*users > 0) {
    return Fail(FailedPrecondition("already initialised: " + DbPath(data_dir) + " has users"),
                kExitUsage);
  }
  auto hash = auth::HashPassword(password);
  if (!hash.ok()) {
    return Fail(hash.status());
  }
  store::UserRecord admin{0, admin_name, "admin", *hash, std::time(nullptr)};
  if (auto id = (*store)->CreateUser(admin); !id.ok()) {
    return Fail(id.status());
  }
  spdlog::info("initialised {} with admin user \"{}\"", data_dir, admin_name);
  return 0;
}

int Serve(const Config& config) {
  std::string host;
  uint16_t port = 0;
  if (Status st = SplitListen(config.listen, &host, &port); !st.ok()) {
    return Fail(st, kExitUsage);
  }
  // Signals are taken synchronously by this thread (sigtimedwait below); block
  // them before any other thread starts so none of those receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  sd_notify(0, "STATUS=opening the datastore");
  if (Status st = MakePrivateDir(config.data_dir); !st.ok()) {
    return Fail(st);
  }
  auto store = store::OpenSqliteStore(DbPath(config.data_dir));
  if (!store.ok()) {
    return Fail(store.status());
  }
  auto users = (*store)->CountUsers();
  if (users.ok() && *users == 0) {
    return Fail(FailedPrecondition("no users yet: run bunkerd init --data-dir " + config.data_dir +
                                   " --admin-password-file FILE first"),
                kExitUsage);
  }
  auto box = auth::SecretBox::OpenOrCreate(KeyPath(config.data_dir));
  if (!box.ok()) {
    return Fail(box.status());
  }
  api::ServerOptions server_options;
  server_options.address = host;
  server_options.port = port;
  server_options.cert_file = config.tls_cert;
  server_options.key_file = config.tls_key;
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    return Fail(InvalidArgument("tls_cert and tls_key go together"), kExitUsage);
  }
  if (config.tls_cert.empty()) {
    std::string tls_dir = config.data_dir + "/tls";
    if (Status st = MakePrivateDir(tls_dir); !st.ok()) {
      return Fail(st);
    }
    server_options.cert_file = tls_dir + "/cert.pem";
    server_options.key_file = tls_dir + "/key.pem";
    if (Status st =
            api::EnsureSelfSignedCertificate(server_options.cert_file, server_options.key_file);
        !st.ok()) {
      return Fail(st);
    }
  }
  server_options.max_body_bytes = static_cast<size_t>(config.max_body_bytes);
  server_options.threads = static_cast<int>(config.threads);
  server_options.worker_threads = static_cast<int>(config.worker_threads);
  server_options.probe_threads = static_cast<int>(config.probe_threads);
  server_options.max_queued_slow = static_cast<size_t>(config.max_queued_slow_requests);
  server_options.read_timeout = std::chrono::seconds(config.read_timeout_seconds);

  api::Metrics metrics;
  api::HandlerOptions handler_options;
  handler_options.token_ttl = std::chrono::hours(config.token_ttl_hours);
  handler_options.max_body_bytes = server_options.max_body_bytes;
  handler_options.cluster_probe_timeout =
      std::chrono::seconds(config.cluster_probe_timeout_seconds);
  handler_options.login_max_failures = static_cast<int>(config.login_max_failures);
  handler_options.login_failure_window = std::chrono::seconds(config.login_failure_window_seconds);
  handler_options.login_max_failures_per_address =
      static_cast<int>(config.login_max_failures_per_address);
  handler_options.file_location_roots = config.file_location_roots;
  api::ApiHandler handler(store->get(), box->get(), &metrics, nullptr, handler_options);

  auto server = api::HttpsServer::Start(server_options, &handler);
  if (!server.ok()) {
    return Fail(server.status());
  }
  handler.SetReady(true);
  std::string where = "https://" + host + ":" + std::to_string((*server)->port());
  spdlog::info("serving {} (data directory {}, certificate {})", where, config.data_dir,
               server_options.cert_file);
  sd_notifyf(0, "READY=1\nSTATUS=serving %s", where.c_str());

  uint64_t watchdog_usec = 0;
  bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0;
  // Ping the watchdog at half its interval; otherwise wake once a second.
  std::chrono::microseconds tick =
      watchdog ? std::chrono::microseconds(watchdog_usec / 2) : std::chrono::seconds(1);
  while (true) {
    timespec ts{static_cast<time_t>(tick.count() / 1'000'000),
                static_cast<long>((tick.count() % 1'000'000) * 1000)};
    int sig = sigtimedwait(&signals, nullptr, &ts);
    if (sig == SIGTERM || sig == SIGINT) {
      spdlog::info("{}: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      break;
    }
    if (watchdog) {
      sd_notify(0, "WATCHDOG=1");
    }
  }
  sd_notify(0, "STOPPING=1\nSTATUS=stopping: finishing requests in flight");
  handler.SetReady(false);
  (*server)->Stop();
  server->reset();
  store->reset();  // closes the database (WAL checkpointed by SQLite on close)
  spdlog::info("stopped");
  return 0;
}

}  // namespace
}  // namespace bunker::bunkerd

int main(int argc, char** argv) {
  using namespace bunker::bunkerd;
  umask(077);  // the database, its WAL, keys and certificates are private
  CLI::App app{"bunkerd: the Bunker appliance (REST API, datastore, users)"};
  app.require_subcommand(1);

  std::string data_dir;
  std::string password_file;
  std::string admin_name = "admin";
  CLI::App* init = app.add_subcommand("init", "Create the datastore and the first admin user");
  init->add_option("--data-dir", data_dir, "Data directory (bunker.db, secret.key, tls/)")
      ->required();
  init->add_option("--admin-password-file", password_file,
                   "File holding the admin password (trailing newline ignored)")
      ->required();
  init->add_option("--admin-name", admin_name, "Name of the admin user")->capture_default_str();

  Config config;
  std::string config_file;
  std::string listen;
  std::string serve_data_dir;
  std::string tls_cert;
  std::string tls_key;
  std::string log_level;
  CLI::App* serve = app.add_subcommand("serve", "Serve the REST API over HTTPS");
  serve->add_option("--config", config_file, "bunkerd.yaml");
  serve->add_option("--data-dir", serve_data_dir, "Overrides data_dir");
  serve->add_option("--listen", listen, "Overrides listen (host:port)");
  serve->add_option("--tls-cert", tls_cert, "Overrides tls_cert (PEM)");
  serve->add_option("--tls-key", tls_key, "Overrides tls_key (PEM)");
  serve->add_option("--log-level", log_level, "Overrides log_level (debug, info, warn, error)");
  std::string log_target;
  serve->add_option("--log-target", log_target,
                    "Overrides log_target: journal, stderr, or auto (journal under systemd)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }

  if (*init) {
    bunker::InitLogging("info");
    return Init(data_dir, password_file, admin_name);
  }
  if (!config_file.empty()) {
    if (bunker::Status st = LoadConfigFile(config_file, &config); !st.ok()) {
      std::cerr << "bunkerd: " << st.ToString() << "\n";
      return kExitUsage;
    }
  }
  if (!serve_data_dir.empty()) config.data_dir = serve_data_dir;
  if (!listen.empty()) config.listen = listen;
  if (!tls_cert.empty()) config.tls_cert = tls_cert;
  if (!tls_key.empty()) config.tls_key = tls_key;
  if (!log_level.empty()) config.log_level = log_level;
  if (!log_target.empty()) config.log_target = log_target;
  if (!SetUpLogging(config.log_target, config.log_level)) {
    spdlog::error("log_target must be journal, stderr or auto, not \"{}\"", config.log_target);
    return kExitUsage;
  }
  return Serve(config);
}

#pragma once

// ApiHandler: the REST API v1 as a pure function from request to response
// (no sockets; server.cc feeds it). Routes, authentication (bearer tokens),
// the ownership model, validation and the one error body live here; the
// OpenAPI document (openapi.json) describes exactly these routes.
//
// Error policy: handlers throw ApiError (or let Status failures be converted)
// inside; Handle() catches everything at its boundary, so it never throws. Bad
// input is always a 4xx naming the field; 500 only for a bug or a failing
// datastore. Each request is logged once (method, path without query,
// status, duration, user) and counted in Metrics; bodies, tokens and
// passwords are never logged.
//
// Ownership: the handler borrows `store`, `secrets` and `metrics`, which must
// outlive it. Thread-safety: Handle() may run concurrently on many threads.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "appliance/api/http.h"
#include "appliance/api/location_probe.h"
#include "appliance/api/metrics.h"
#include "appliance/auth/login_throttle.h"
#include "appliance/auth/secret_box.h"
#include "appliance/kube/version_probe.h"
#include "appliance/store/store.h"

namespace bunker::api {

struct HandlerOptions {
  std::chrono::seconds token_ttl{std::chrono::hours(24)};
  // Bodies above this are refused with 413 (the server enforces it while
  // reading; the handler checks again).
  size_t max_body_bytes = 1 << 20;
  // Failed logins per user name and client address before 429 (and the
  // window they are counted in).
  int login_max_failures = 5;
  std::chrono::seconds login_failure_window{300};
  // Failed logins per client address over all user names (password spraying)
  // in the same window before 429; a success does not clear them.
  int login_max_failures_per_address = 30;
  // The cluster status probe (GET /version); empty: kube::ProbeVersion with
  // cluster_probe_timeout. Runs on the calling thread, bounded by the
  // timeout (the server calls routes that probe on a worker pool; see
  // Classify).
  kube::ClusterProber cluster_prober;
  std::chrono::milliseconds cluster_probe_timeout{std::chrono::seconds(5)};
  // file:// backup locations: admins may create them anywhere bunkerd can
  // write; other users only inside one of these directories (compared after
  // resolving symlinks and "..", and the location then stores the resolved
  // path). Empty: file:// locations are for admins only.
  std::vector<std::string> file_location_roots;
};

class ApiHandler {
 public:
  // `clock` returns unix seconds (injectable for token expiry tests).
  ApiHandler(store::Store* store, const auth::SecretBox* secrets, Metrics* metrics,
             LocationProber prober, HandlerOptions options,
             std::function<int64_t()> clock = nullptr);

  ApiResponse Handle(const ApiRequest& request);

  // How long answering `request` may hold the calling thread: kQuick (the
  // datastore only), kCompute (password hashing: login, creating a user,
  // changing a password; tens of milliseconds of CPU and 32 MiB each) or
  // kWait (probes of clusters and storage: network round trips, up to a
  // timeout). The server answers the last two on small worker pools so its
  // network threads only do I/O. Cheap (a route match).
  enum class Work { kQuick, kCompute, kWait };
  Work Classify(const ApiRequest& request) const;

  // Logs and counts, like any request Handle() answers, a response the
  // server wrote without calling Handle(): 400 malformed HTTP, 408 slow
  // client, 413/431 too large, 503 busy. `method` and `target` are empty
  // when the request line was not read; the user is always "-".
  void RecordServerResponse(const std::string& method, const std::string& target, int status,
                            double seconds, const std::string& remote);

  // /readyz answers 200 only while ready (set by bunkerd once serving, cleared
  // when shutting down).
  void SetReady(bool ready) { ready_ = ready; }

  struct Context;  // per-request state, defined in handler.cc

 private:
  ApiResponse Dispatch(Context& ctx);
  void Record(const std::string& method, const std::string& path, const std::string& route,
              int status, double seconds, const std::string& user, const std::string& remote);

  store::Store* const store_;
  const auth::SecretBox* const secrets_;
  Metrics* const metrics_;
  const LocationProber prober_;
  const HandlerOptions options_;
  const std::function<int64_t()> clock_;
  std::atomic<bool> ready_{false};
  auth::LoginThrottle login_throttle_;    // user name @ address
  auth::LoginThrottle address_throttle_;  // address
};

// Every route the handler serves, as (method, path template) pairs such as
// ("GET", "/api/v1/backups/{id}"); openapi.json documents exactly these.
std::vector<std::pair<std::string, std::string>> ApiRoutes();

// The OpenAPI 3 document served at /api/v1/openapi.json (appliance/api/openapi.json,
// embedded at build time).
const std::string& OpenApiDocument();

}  // namespace bunker::api

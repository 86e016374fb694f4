#pragma once

// Metrics: request counters and latency histograms, rendered in the
// Prometheus text exposition format for GET /metrics.
//   bunker_http_requests_total{method,route,status}
//   bunker_http_request_duration_seconds{route} (histogram)
// Routes are templates ("/api/v1/backup-locations/{id}"), never raw paths,
// so the number of series stays bounded whatever clients send.
// Thread-safety: all methods are thread-safe (one mutex).

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace bunker::api {

// Backup gauges from the datastore, in the same text format:
//   bunker_backups{state}                 backups by state (every state listed)
//   bunker_backup_logical_bytes           logical bytes covered by backups
//   bunker_backup_moved_bytes             bytes they uploaded to locations (new data)
// These are sums over the backups recorded now (gauges: deleting a backup
// lowers them).
std::string RenderBackupMetrics(const std::map<std::string, int64_t>& by_state, int64_t bytes_total,
                                int64_t bytes_moved);

class Metrics {
 public:
  void RecordRequest(const std::string& method, const std::string& route, int status,
                     double seconds);
  std::string RenderPrometheus() const;

 private:
  static constexpr std::array<double, 10> kBuckets = {0.001, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,   0.25,  0.5,  1.0,   5.0};
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> buckets{};  // cumulative at render time
    uint64_t count = 0;
    double sum = 0;
  };

  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;  // guarded by mu_
  std::map<std::string, Histogram> latency_;                                // guarded by mu_
};

}  // namespace bunker::api

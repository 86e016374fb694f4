#include "tests/integration/agent/agent_test_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <thread>

namespace bunker::testing {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// splitmix64: tiny, fast, and fully specified (unlike std:: distributions).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

void AppendRandom(std::string* out, uint64_t seed, uint64_t size) {
  Rng rng(seed ^ 0x5EEDull);
  size_t start = out->size();
  out->resize(start + size);
  char* p = out->data() + start;
  uint64_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t v = rng.Next();
    std::memcpy(p + i, &v, 8);
  }
  uint64_t v = rng.Next();
  for (; i < size; ++i, v >>= 8) p[i] = static_cast<char>(v & 0xff);
}

void AppendText(std::string* out, uint64_t seed, uint64_t size) {
  static const std::array<const char*, 24> kWords = {
      "volume", "snapshot", "backup",  "restore", "chunk",      "pack", "index", "lease",
      "node",   "cluster",  "kubelet", "the",     "of",         "and",  "a",     "to",
      "block",  "device",   "sparse",  "hole",    "repository", "key",  "prune", "check"};
  Rng rng(seed ^ 0x7E47ull);
  std::string text;
  text.reserve(size + 64);
  uint64_t line_words = 0;
  while (text.size() < size) {
    uint64_t r = rng.Next();
    text += kWords[r % kWords.size()];
    if ((r >> 8) % 97 == 0) text += std::to_string((r >> 16) % 100000);
    if (++line_words == 8 + (r >> 32) % 8) {
      text += '\n';
      line_words = 0;
    } else {
      text += ' ';
    }
  }
  text.resize(size);
  out->append(text);
}

}  // namespace

fs::path AgentBinary() {
  if (const char* env = std::getenv("BUNKER_TEST_AGENT_BINARY"); env != nullptr && *env != '\0') {
    return env;
  }
  return fs::path(BUNKER_BINARY_DIR) / "nodeagent/agent/bunker-agent";
}

std::string ImageBytes(const std::vector<Region>& regions) {
  std::string out;
  uint64_t total = 0;
  for (const Region& r : regions) total += r.size;
  out.reserve(total);
  for (const Region& r : regions) {
    switch (r.fill) {
      case Fill::kRandom:
        AppendRandom(&out, r.seed, r.size);
        break;
      case Fill::kText:
        AppendText(&out, r.seed, r.size);
        break;
      case Fill::kZero:
        out.append(r.size, '\0');
        break;
    }
  }
  return out;
}

void WriteImage(const fs::path& path, const std::vector<Region>& regions) {
  Status st = WriteFile(path, ImageBytes(regions));
  ASSERT_TRUE(st.ok()) << st.ToString();
}

void ScribbleRange(const fs::path& path, uint64_t offset, uint64_t length, uint64_t seed) {
  std::string bytes;
  AppendRandom(&bytes, seed ^ 0xC0FFEEull, length);
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f) << "open " << path;
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f) << "write " << path;
}

uint64_t HoleBytes(const fs::path& path, uint64_t chunk) {
  Result<std::string> data = ReadFile(path);
  EXPECT_TRUE(data.ok()) << data.status().ToString();
  if (!data.ok()) return 0;
  uint64_t holes = 0;
  for (uint64_t off = 0; off < data->size(); off += chunk) {
    uint64_t n = std::min<uint64_t>(chunk, data->size() - off);
    const char* p = data->data() + off;
    if (std::all_of(p, p + n, [](char c) { return c == '\0'; })) holes += n;
  }
  return holes;
}

std::string CompareFiles(const fs::path& a, const fs::path& b) {
  Result<std::string> da = ReadFile(a);
  if (!da.ok()) return "cannot read " + a.string() + ": " + da.status().ToString();
  Result<std::string> db = ReadFile(b);
  if (!db.ok()) return "cannot read " + b.string() + ": " + db.status().ToString();
  if (da->size() != db->size()) {
    return a.string() + " has " + std::to_string(da->size()) + " bytes, " + b.string() + " has " +
           std::to_string(db->size());
  }
  auto [ia, ib] = std::mismatch(da->begin(), da->end(), db->begin());
  if (ia == da->end()) return "";
  return a.string() + " and " + b.string() + " first differ at offset " +
         std::to_string(ia - da->begin());
}

uint64_t AllocatedBytes(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

std::map<std::string, std::string> ListTree(const fs::path& dir) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    int64_t mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    std::string rel = fs::relative(it->path(), dir).string();
    out[rel] = S_ISDIR(st.st_mode) ? "dir " + std::to_string(mtime_ns)
                                   : std::to_string(st.st_size) + " " + std::to_string(mtime_ns);
  }
  EXPECT_FALSE(ec) << "list " << dir << ": " << ec.message();
  return out;
}

std::string DiffTrees(const std::map<std::string, std::string>& before,
                      const std::map<std::string, std::string>& after) {
  std::ostringstream s;
  for (const auto& [name, what] : before) {
    auto it = after.find(name);
    if (it == after.end()) {
      s << "  removed " << name << "\n";
    } else if (it->second != what) {
      s << "  changed " << name << " (" << what << " -> " << it->second << ")\n";
    }
  }
  for (const auto& [name, what] : after) {
    if (!before.contains(name)) s << "  created " << name << " (" << what << ")\n";
  }
  return s.str();
}

std::vector<std::string> ObjectNames(const fs::path& dir, const std::string& sub) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(dir / sub)) return out;
  for (auto it = fs::recursive_directory_iterator(dir / sub, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    if (it->path().filename().string().starts_with(".tmp-")) continue;
    out.push_back(fs::relative(it->path(), dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void CopyTree(const fs::path& src, const fs::path& dst) {
  Result<RunResult> r = RunCommand({"cp", "-a", src.string(), dst.string()});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->ok()) << r->Describe();
}

void FlipByte(const fs::path& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f) << "open " << path;
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  ASSERT_TRUE(f.get(c)) << "read " << path << " at " << offset;
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0x01));
  ASSERT_TRUE(f) << "write " << path;
}

void WaitUntilPacksAreOlderThanNow(const fs::path& repo) {
  int64_t newest = 0;
  for (const std::string& name : ObjectNames(repo, "data")) {
    struct stat st {};
    if (::stat((repo / name).c_str(), &st) == 0) newest = std::max<int64_t>(newest, st.st_mtime);
  }
  while (static_cast<int64_t>(std::time(nullptr)) <= newest) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::optional<json> StdoutJson(const RunResult& r) {
  json j = json::parse(r.out, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    ADD_FAILURE() << "stdout is not one JSON object:\n" << r.Describe();
    return std::nullopt;
  }
  return j;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream s(text);
  std::string line;
  while (std::getline(s, line)) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

void AgentTest::SetUp() {
  Result<TempDir> t = TempDir::Create("bunker-agent-test");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  tmp_ = std::move(*t);
  repo_ = tmp_.path() / "repo";
  ASSERT_TRUE(fs::exists(AgentBinary())) << AgentBinary() << " is not built";
}

EnvChanges AgentTest::Env(const EnvChanges& extra) const {
  EnvChanges env = {"BUNKER_REPOSITORY",
                    "BUNKER_PASSWORD_FILE",
                    "BUNKER_NEW_PASSWORD",
                    "BUNKER_IO_ENGINE",
                    "BUNKER_FAILPOINT",
                    "BUNKER_FAILPOINT_LIST",
                    "BUNKER_IO_URING_SIMULATE_EPERM",
                    "BUNKER_PASSWORD=" + password_};
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

RunResult AgentTest::Agent(const std::vector<std::string>& args, const EnvChanges& env,
                           std::chrono::milliseconds timeout) const {
  std::vector<std::string> argv = {AgentBinary().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions o;
  o.env = Env(env);
  o.timeout = timeout;
  o.cwd = dir();
  Result<RunResult> r = RunCommand(argv, o);
  if (!r.ok()) {
    ADD_FAILURE() << "cannot start bunker-agent: " << r.status().ToString();
    return RunResult{};
  }
  EXPECT_FALSE(r->timed_out) << "bunker-agent timed out (hung?):\n" << r->Describe();
  return *r;
}

RunResult AgentTest::In(const fs::path& repo, const std::vector<std::string>& args,
                        const EnvChanges& env) const {
  std::vector<std::string> all = {"--repo", UrlOf(repo)};
  all.insert(all.end(), args.begin(), args.end());
  return Agent(all, env);
}

std::optional<json> AgentTest::JsonOk(const fs::path& repo, const std::vector<std::string>& args,
                                      const EnvChanges& env) {
  std::vector<std::string> all = args;
  all.push_back("--json");
  RunResult r = In(repo, all, env);
  if (!r.ok()) {
    ADD_FAILURE() << "bunker-agent failed:\n" << r.Describe();
    return std::nullopt;
  }
  return StdoutJson(r);
}

void AgentTest::Init(const fs::path& repo) {
  RunResult r = In(repo, {"repo", "init"});
  ASSERT_TRUE(r.ok()) << r.Describe();
}

std::optional<json> AgentTest::Backup(const fs::path& repo, const fs::path& image,
                                      const std::string& volume_id,
                                      const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"backup", "--volume", image.string(), "--volume-id", volume_id};
  args.insert(args.end(), extra.begin(), extra.end());
  return JsonOk(repo, args);
}

std::optional<json> AgentTest::Snapshots(const fs::path& repo, const std::string& volume_id) {
  std::vector<std::string> args = {"snapshots"};
  if (!volume_id.empty()) {
    args.push_back("--volume-id");
    args.push_back(volume_id);
  }
  std::optional<json> j = JsonOk(repo, args);
  if (j && !(j->contains("snapshots") && (*j)["snapshots"].is_array())) {
    ADD_FAILURE() << "no snapshots array in " << j->dump();
    return std::nullopt;
  }
  return j;
}

std::string AgentTest::RestoreAndCompare(const fs::path& repo, const std::string& snapshot,
                                         const fs::path& image) {
  fs::path target = dir() / ("restored-" + std::to_string(++restore_counter_) + ".img");
  RunResult r = In(repo, {"restore", "--snapshot", snapshot, "--target", target.string()});
  if (!r.ok()) return "restore of " + snapshot + " failed:\n" + r.Describe();
  std::string diff = CompareFiles(image, target);
  std::error_code ec;
  fs::remove(target, ec);
  return diff;
}

int AgentTest::CheckHealthy(const fs::path& repo, bool read_data, json* report) {
  std::vector<std::string> args = {"check", "--json"};
  if (read_data) args.push_back("--read-data");
  RunResult r = In(repo, args);
  EXPECT_EQ(r.exit_code, 0) << "check failed:\n" << r.Describe();
  std::optional<json> j = StdoutJson(r);
  if (r.exit_code != 0 || !j) return -1;
  if (report != nullptr) *report = *j;
  int unreferenced = 0;
  for (const json& p : (*j)["problems"]) {
    if (p.value("kind", "") == "unreferenced") {
      ++unreferenced;
    } else {
      ADD_FAILURE() << "check exited 0 but reports a problem: " << p.dump();
      return -1;
    }
  }
  EXPECT_TRUE((*j).value("healthy", false)) << j->dump(2);
  return unreferenced;
}

}  // namespace bunker::testing

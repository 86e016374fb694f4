// The offline bundle, fast part (make test): a bundle is built once from this
// build directory (offline-bundle/build-bundle.sh --no-debian-debs: the real
// .debs from CPack, the real OCI image archives from umoci, the real signing
// and install.sh), then
//   - install.sh accepts it, and refuses it with one flipped byte, a wrong
//     signature, a wrong key or an added file, before touching anything;
//   - install.sh --dry-run prints every step;
//   - the .debs carry their Depends, maintainer scripts and units, and every
//     unit passes `systemd-analyze verify` in a root holding the packages;
//   - each image shows its entrypoint, user and labels under
//     `skopeo inspect oci-archive:`, its binary runs from the image's own root
//     (only the libraries ldd named), and a rebuild gives the same digest;
//   - install.sh --images-only mirrors both images into a real docker-registry
//     on loopback, where `skopeo inspect docker://` shows the bundle's digests,
//     and renders manifests that parse as YAML and name the mirrored images.
// The whole path (clean Debian root, no network) is make bundle-test.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/harness/ports.h"
#include "tests/harness/process.h"
#include "tests/harness/temp_dir.h"

namespace bunker::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kSource = BUNKER_SOURCE_DIR;
const std::string kBuild = BUNKER_BINARY_DIR;
const std::string kVersion = "0.1.0";

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Runs argv to completion (bounded at 10 minutes); a failure to start fails
// the test.
RunResult RunTool(const std::vector<std::string>& argv, EnvChanges env = {}) {
  RunOptions options;
  options.timeout = std::chrono::minutes(10);
  options.env = std::move(env);
  auto r = RunCommand(argv, options);
  EXPECT_TRUE(r.ok()) << argv[0] << ": " << r.status().ToString();
  return r.ok() ? *r : RunResult{};
}

RunResult Shell(const std::string& script) { return RunTool({"bash", "-c", script}); }

// The bundle, built once per build directory and source state: ctest runs
// every test in its own process, so the first one builds it (under a lock)
// into the build directory and the others reuse it. Tests never change it;
// a test that damages a bundle works on a copy in its own temp directory.
class BundleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (const char* tool : {"umoci", "skopeo", "docker-registry", "cpack", "dpkg-shlibdeps",
                             "openssl", "systemd-analyze", "flock"}) {
      if (!FindExecutable(tool).ok()) {
        skip_reason_ = new std::string(std::string(tool) + " is missing (make deps)");
        return;
      }
    }
    RunResult r = RunTool({"bash", kSource + "/tests/integration/bundle/fixture.sh", kSource,
                           kBuild, Fixture().string(), kVersion},
                          {"SOURCE_DATE_EPOCH=1700000000"});
    ASSERT_TRUE(r.ok()) << r.Describe();
    build_log_ = new std::string(r.out);
  }

  void SetUp() override {
    if (skip_reason_ != nullptr) {
      GTEST_SKIP() << *skip_reason_;
    }
    ASSERT_TRUE(fs::exists(Bundle() / "SHA256SUMS")) << "the bundle was not built";
    auto dir = TempDir::Create("bundle");
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    scratch_ = std::move(dir).value();
  }

  static fs::path Fixture() { return fs::path(kBuild) / "tests/integration/bundle/fixture"; }
  static fs::path Out() { return Fixture() / "out"; }
  static fs::path Bundle() { return Fixture() / ("bunker-offline-" + kVersion); }
  const fs::path& Scratch() const { return scratch_.path(); }

  // A private copy of the bundle a test may damage.
  fs::path CopyBundle(const std::string& name) {
    fs::path copy = Scratch() / name;
    EXPECT_TRUE(RunTool({"cp", "-a", Bundle().string(), copy.string()}).ok());
    return copy;
  }

  static RunResult Install(const fs::path& bundle, std::vector<std::string> args) {
    args.insert(args.begin(), {"bash", (bundle / "install.sh").string()});
    return RunTool(args);
  }

  // Digest of the image manifest an oci-archive's index.json names.
  static std::string ArchiveDigest(const std::string& image) {
    RunResult r =
        RunTool({"tar", "-xOf", (Bundle() / "images" / (image + ".tar")).string(), "./index.json"});
    EXPECT_TRUE(r.ok()) << r.Describe();
    return json::parse(r.out)["manifests"][0]["digest"].get<std::string>();
  }

  TempDir scratch_;
  static std::string* build_log_;
  static std::string* skip_reason_;
};

std::string* BundleTest::build_log_ = nullptr;
std::string* BundleTest::skip_reason_ = nullptr;

TEST_F(BundleTest, GoodBundleVerifiesWithItsOwnKeyAndWithAnOutOfBandKey) {
  RunResult r = Install(Bundle(), {"--verify-only"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_TRUE(Contains(r.out, "signature of SHA256SUMS: good")) << r.out;
  EXPECT_TRUE(Contains(r.out, "from signing-key.pub shipped inside this bundle")) << r.out;
  EXPECT_TRUE(Contains(r.out, "every file matches SHA256SUMS")) << r.out;

  // The key "obtained out of band": the public half of the build's key.
  fs::path pub = Scratch() / "oob.pub";
  ASSERT_TRUE(RunTool({"openssl", "pkey", "-in", (Out() / "dev-signing-key.pem").string(),
                       "-pubout", "-out", pub.string()})
                  .ok());
  r = Install(Bundle(), {"--verify-only", "--pubkey", pub.string()});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_TRUE(Contains(r.out, "(given with --pubkey)")) << r.out;
  // The fingerprint install.sh trusts is the one make bundle printed.
  std::string fp =
      Shell("openssl pkey -pubin -in " + pub.string() + " -outform DER | sha256sum | cut -d' ' -f1")
          .out;
  fp.erase(fp.find_last_not_of('\n') + 1);
  ASSERT_EQ(fp.size(), 64u);
  EXPECT_TRUE(Contains(r.out, "trusting key sha256:" + fp)) << r.out;
  EXPECT_TRUE(Contains(*build_log_, "signing key fingerprint sha256:" + fp)) << *build_log_;
}

TEST_F(BundleTest, OneFlippedByteIsRefusedBeforeAnythingIsInstalled) {
  fs::path copy = CopyBundle("flipped");
  fs::path image = copy / "images" / "bunkerd.tar";
  auto size = fs::file_size(image);
  {
    std::fstream f(image, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(size / 2));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x01);
    f.seekp(static_cast<std::streamoff>(size / 2));
    f.write(&c, 1);
  }
  // Not --verify-only: the full install (as a dry run) must stop at step 1.
  RunResult r = Install(copy, {"--dry-run", "--registry", "127.0.0.1:5000"});
  EXPECT_EQ(r.exit_code, 3) << r.Describe();
  EXPECT_TRUE(Contains(r.err, "REFUSED: files do not match their signed checksums")) << r.err;
  EXPECT_TRUE(Contains(r.err, "images/bunkerd.tar: FAILED")) << r.err;
  EXPECT_TRUE(Contains(r.err, "nothing was installed or changed")) << r.err;
  EXPECT_FALSE(Contains(r.out, "== 2.")) << r.out;
  EXPECT_FALSE(Contains(r.out, "dpkg")) << r.out;
}

TEST_F(BundleTest, AlteredChecksumListIsRefusedBySignature) {
  fs::path copy = CopyBundle("sums");
  // A tamperer who changes a file and fixes SHA256SUMS to match.
  ASSERT_TRUE(Shell("cd " + copy.string() +
                    " && echo '# extra' >> MANIFEST && "
                    "sed -i \"s|^[0-9a-f]*  MANIFEST$|$(sha256sum MANIFEST | cut -d' ' -f1)  "
                    "MANIFEST|\" SHA256SUMS && sha256sum --check --quiet SHA256SUMS")
                  .ok());
  RunResult r = Install(copy, {"--verify-only"});
  EXPECT_EQ(r.exit_code, 3) << r.Describe();
  EXPECT_TRUE(Contains(r.err, "SHA256SUMS.sig is not a valid signature")) << r.err;
}

TEST_F(BundleTest, WrongSignatureAndWrongKeyAreRefused) {
  fs::path other = Scratch() / "other.pem";
  fs::path other_pub = Scratch() / "other.pub";
  ASSERT_TRUE(
      RunTool({"openssl", "genpkey", "-algorithm", "ed25519", "-out", other.string()}).ok());
  ASSERT_TRUE(
      RunTool({"openssl", "pkey", "-in", other.string(), "-pubout", "-out", other_pub.string()})
          .ok());

  // The genuine bundle checked against someone else's key.
  RunResult r = Install(Bundle(), {"--verify-only", "--pubkey", other_pub.string()});
  EXPECT_EQ(r.exit_code, 3) << r.Describe();
  EXPECT_TRUE(Contains(r.err, "is not a valid signature of SHA256SUMS")) << r.err;

  // The bundle re-signed by another key: refused against the real key.
  fs::path copy = CopyBundle("resigned");
  ASSERT_TRUE(RunTool({"openssl", "pkeyutl", "-sign", "-rawin", "-inkey", other.string(), "-in",
                       (copy / "SHA256SUMS").string(), "-out", (copy / "SHA256SUMS.sig").string()})
                  .ok());
  fs::path real_pub = Scratch() / "real.pub";
  ASSERT_TRUE(RunTool({"openssl", "pkey", "-in", (Out() / "dev-signing-key.pem").string(),
                       "-pubout", "-out", real_pub.string()})
                  .ok());
  r = Install(copy, {"--verify-only", "--pubkey", real_pub.string()});
  EXPECT_EQ(r.exit_code, 3) << r.Describe();
  EXPECT_TRUE(Contains(r.err, "REFUSED")) << r.err;

  // A garbage signature.
  ASSERT_TRUE(Shell("head -c 64 /dev/urandom > " + (copy / "SHA256SUMS.sig").string()).ok());
  r = Install(copy, {"--verify-only"});
  EXPECT_EQ(r.exit_code, 3) << r.Describe();
}

TEST_F(BundleTest, AddedFileIsRefused) {
  fs::path copy = CopyBundle("added");
  ASSERT_TRUE(Shell("cp " + (copy / "debs" / "bunkerctl_*.deb").string() + " " +
                    (copy / "debs" / "evil_1.0_amd64.deb").string())
                  .ok());
  RunResult r = Install(copy, {"--verify-only"});
  EXPECT_EQ(r.exit_code, 3) << r.Describe();
  EXPECT_TRUE(Contains(r.err, "not covered by SHA256SUMS")) << r.err;
  EXPECT_TRUE(Contains(r.err, "debs/evil_1.0_amd64.deb")) << r.err;
}

TEST_F(BundleTest, DryRunPrintsEveryStepAndChangesNothing) {
  bool etc_existed = fs::exists("/etc/bunker");
  RunResult r = Install(Bundle(), {"--dry-run", "--registry", "registry.example:5000", "--kube-dir",
                                   (Scratch() / "kube-dry").string()});
  ASSERT_TRUE(r.ok()) << r.Describe();
  for (const std::string& line : {
           std::string("== 1. verify the bundle"),
           std::string("+ dpkg -i debs/bunker-agent_" + kVersion + "-1_amd64.deb debs/bunkerctl_" +
                       kVersion + "-1_amd64.deb debs/bunkerd_" + kVersion + "-1_amd64.deb"),
           std::string("bunkerd init --data-dir /var/lib/bunker"),
           std::string("+ skopeo copy --quiet --preserve-digests oci-archive:images/bunkerd.tar "
                       "docker://registry.example:5000/bunker/bunkerd:" +
                       kVersion),
           std::string("docker://registry.example:5000/bunker/bunker-agent:" + kVersion),
           std::string("kubectl apply -f " + (Scratch() / "kube-dry").string() +
                       "/bunker-agent.yaml"),
           std::string("registry.example:5000/bunker/bunker-agent:" + kVersion + "@" +
                       ArchiveDigest("bunker-agent")),
       }) {
    EXPECT_TRUE(Contains(r.out, line)) << "missing: " << line << "\n" << r.out;
  }
  EXPECT_EQ(fs::exists("/etc/bunker"), etc_existed);
  EXPECT_FALSE(fs::exists(Scratch() / "kube-dry"));
}

TEST_F(BundleTest, DebsCarryDependsMaintainerScriptsAndUnits) {
  std::string debs = (Bundle() / "debs").string() + "/";
  RunResult d = Shell("dpkg-deb -f " + debs + "bunkerd_*.deb Depends");
  ASSERT_TRUE(d.ok()) << d.Describe();
  for (const char* dep : {"passwd", "libssl3", "libsqlite3-0", "libyaml-cpp0.7", "libsystemd0",
                          "libstdc++6", "libc6"}) {
    EXPECT_TRUE(Contains(d.out, dep)) << dep << " not in bunkerd's Depends: " << d.out;
  }
  d = Shell("dpkg-deb -f " + debs + "bunker-agent_*.deb Depends");
  for (const char* dep : {"liburing2", "liblz4-1", "libnfs13", "libssl3"}) {
    EXPECT_TRUE(Contains(d.out, dep)) << dep << " not in bunker-agent's Depends: " << d.out;
  }
  RunResult c = Shell("dpkg-deb --ctrl-tarfile " + debs + "bunkerd_*.deb | tar -t");
  for (const char* f : {"./postinst", "./prerm", "./postrm"}) {
    EXPECT_TRUE(Contains(c.out, f)) << c.out;
  }
  RunResult files = Shell("dpkg-deb -c " + debs + "bunkerd_*.deb; dpkg-deb -c " + debs +
                          "bunker-agent_*.deb; dpkg-deb -c " + debs + "bunkerctl_*.deb");
  for (const char* f :
       {"./usr/bin/bunkerd", "./usr/lib/systemd/system/bunkerd.service",
        "./usr/share/bunker/bunkerd.yaml", "./usr/bin/bunker-agent",
        "./usr/lib/systemd/system/bunker-agent.service",
        "./usr/lib/systemd/system/bunker-maintenance.timer", "./usr/bin/bunkerctl"}) {
    EXPECT_TRUE(Contains(files.out, f)) << f << "\n" << files.out;
  }
  // Stripped: no debug sections in the packaged binary.
  RunResult x =
      Shell("d=$(mktemp -d) && dpkg-deb -x " + debs +
            "bunkerd_*.deb $d && readelf -S $d/usr/bin/bunkerd | grep -c debug_info; rm -rf "
            "$d");
  EXPECT_EQ(x.out, "0\n") << x.Describe();
}

TEST_F(BundleTest, EveryUnitPassesSystemdAnalyzeVerify) {
  // A root holding systemd's own units and the three packages' files, so
  // verify resolves dependencies and checks ExecStart= binaries exist.
  fs::path root = Scratch() / "unit-root";
  fs::create_directories(root / "usr/lib/systemd");
  ASSERT_TRUE(
      RunTool({"cp", "-a", "/lib/systemd/system", (root / "usr/lib/systemd").string()}).ok());
  ASSERT_TRUE(Shell("for d in " + (Bundle() / "debs").string() + "/*.deb; do dpkg-deb -x $d " +
                    root.string() + " || exit 1; done")
                  .ok());
  std::vector<std::string> argv = {"systemd-analyze", "verify", "--root=" + root.string()};
  int units = 0;
  for (const auto& entry : fs::directory_iterator(kSource + "/systemd")) {
    std::string name = entry.path().filename().string();
    ASSERT_TRUE(fs::exists(root / "usr/lib/systemd/system" / name))
        << name << " is in systemd/ but in no package";
    argv.push_back("/usr/lib/systemd/system/" + name);
    ++units;
  }
  EXPECT_EQ(units, 5);
  RunResult r = RunTool(argv);
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.err, "") << "systemd-analyze verify warned";
}

TEST_F(BundleTest, ImagesShowEntrypointUserAndLabelsAndRunFromTheirOwnRoot) {
  struct Want {
    std::string name, user;
  };
  for (const Want& w : {Want{"bunkerd", "10001:10001"}, Want{"bunker-agent", "0:0"}}) {
    std::string archive = "oci-archive:" + (Bundle() / "images" / (w.name + ".tar")).string();
    RunResult r = RunTool({"skopeo", "inspect", "--config", archive});
    ASSERT_TRUE(r.ok()) << r.Describe();
    json config = json::parse(r.out);
    EXPECT_EQ(config["config"]["Entrypoint"], json::array({"/usr/bin/" + w.name})) << r.out;
    EXPECT_EQ(config["config"]["User"], w.user) << r.out;
    EXPECT_EQ(config["config"]["Labels"]["org.opencontainers.image.version"], kVersion);
    std::string revision = Shell("git -C " + kSource + " rev-parse --short=12 HEAD").out;
    revision.erase(revision.find_last_not_of('\n') + 1);
    EXPECT_EQ(config["config"]["Labels"]["org.opencontainers.image.revision"], revision);
    EXPECT_EQ(config["created"], "2023-11-14T22:13:20Z");  // SOURCE_DATE_EPOCH

    r = RunTool({"skopeo", "inspect", archive});
    ASSERT_TRUE(r.ok()) << r.Describe();
    EXPECT_EQ(json::parse(r.out)["Digest"], ArchiveDigest(w.name));

    // Unpack the single layer and run the program inside it as the image's
    // user: every library it needs must be in the image.
    fs::path root = Scratch() / ("root-" + w.name);
    fs::create_directories(root);
    RunResult u = Shell(
        "set -e; d=$(mktemp -d); tar -xf " + (Bundle() / "images" / (w.name + ".tar")).string() +
        " -C $d; m=$(sed -n 's/.*\"digest\":\"sha256:\\([0-9a-f]*\\)\".*/\\1/p' $d/index.json); "
        "l=$(sed -n 's/.*\"layers\":\\[{[^}]*\"digest\":\"sha256:\\([0-9a-f]*\\)\".*/\\1/p' "
        "$d/blobs/sha256/$m); tar -xzf $d/blobs/sha256/$l -C " +
        root.string() + "; rm -rf $d");
    ASSERT_TRUE(u.ok()) << u.Describe();
    r = RunTool({"chroot", "--userspec=" + w.user, root.string(), "/usr/bin/" + w.name, "--help"});
    EXPECT_TRUE(r.ok()) << r.Describe();
    EXPECT_TRUE(Contains(r.out, w.name)) << r.out;
  }
  // The agent image's placeholder command (DaemonSet) runs too.
  RunResult r =
      RunTool({"chroot", (Scratch() / "root-bunker-agent").string(), "/usr/bin/sleep", "0"});
  EXPECT_TRUE(r.ok()) << r.Describe();
  // bunkerd's runtime user exists in the image.
  auto passwd = ReadFile(Scratch() / "root-bunkerd/etc/passwd");
  ASSERT_TRUE(passwd.ok());
  EXPECT_TRUE(Contains(*passwd, "bunker:x:10001:10001:")) << *passwd;
}

TEST_F(BundleTest, ImageRebuildGivesTheSameDigest) {
  fs::path again = Scratch() / "again.tar";
  std::string revision = Shell("git -C " + kSource + " rev-parse --short=12 HEAD").out;
  revision.erase(revision.find_last_not_of('\n') + 1);
  RunResult r =
      RunTool({"bash", kSource + "/images/build-image.sh", "--name", "bunker-agent", "--binary",
               (Out() / "install/bin/bunker-agent").string(), "--out", again.string(), "--user",
               "0:0", "--extra", "/usr/bin/sleep", "--version", kVersion, "--revision", revision,
               "--description", "Bunker node agent (bunker-agent)"},
              {"SOURCE_DATE_EPOCH=1700000000"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  RunResult a = RunTool({"sha256sum", again.string()});
  RunResult b = RunTool({"sha256sum", (Bundle() / "images/bunker-agent.tar").string()});
  EXPECT_EQ(a.out.substr(0, 64), b.out.substr(0, 64));
}

TEST_F(BundleTest, SbomNamesEveryPackageAndImageLibrary) {
  auto sbom = ReadFile(Bundle() / "SBOM.tsv");
  ASSERT_TRUE(sbom.ok());
  for (const std::string& line :
       {std::string("deb\tdebs/bunkerd_" + kVersion + "-1_amd64.deb\t-\tbunkerd\t" + kVersion +
                    "-1"),
        std::string("image-file\timages/bunkerd.tar\t/lib64/ld-linux-x86-64.so.2\tlibc6\t"),
        std::string("image-file\timages/bunkerd.tar\t/lib/x86_64-linux-gnu/libssl.so.3\tlibssl3\t"),
        std::string("image-file\timages/bunker-agent.tar\t/lib/x86_64-linux-gnu/liburing.so.2\t"
                    "liburing2\t"),
        std::string("image-file\timages/bunker-agent.tar\t/usr/bin/sleep\tcoreutils\t")}) {
    EXPECT_TRUE(Contains(*sbom, line)) << "missing: " << line << "\n" << *sbom;
  }
  EXPECT_FALSE(Contains(*sbom, "\tunknown\t")) << *sbom;
  auto manifest = ReadFile(Bundle() / "MANIFEST");
  ASSERT_TRUE(manifest.ok());
  EXPECT_TRUE(Contains(*manifest, "image bunkerd " + kVersion + " " + ArchiveDigest("bunkerd")))
      << *manifest;
}

// A real docker-registry (distribution v2) on a free loopback port; with
// `secure`, over TLS with a certificate from a CA of its own and with
// htpasswd (bcrypt) authentication for user "mirror".
class Registry {
 public:
  bool Start(const fs::path& dir, bool secure = false) {
    auto port = PickFreePort();
    if (!port.ok()) {
      return false;
    }
    port_ = *port;
    dir_ = dir;
    fs::create_directories(dir / "storage");
    std::string conf =
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        "    rootdirectory: " +
        (dir / "storage").string() + "\nhttp:\n  addr: 127.0.0.1:" + std::to_string(port_) + "\n";
    if (secure) {
      std::string d = dir.string();
      RunResult pki = Shell(
          "set -e; cd " + d +
          "; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
          "-subj /CN=test-ca -keyout ca.key -out ca.crt 2>/dev/null; "
          "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "
          "/CN=127.0.0.1 -keyout server.key -out server.csr 2>/dev/null; "
          "printf 'subjectAltName=IP:127.0.0.1\\n' > ext; "
          "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
          "-extfile ext -out server.crt 2>/dev/null; "
          "python3 -W ignore -c \"import crypt; print('mirror:' + crypt.crypt('mirror-pw', "
          "crypt.mksalt(crypt.METHOD_BLOWFISH)))\" > htpasswd");
      if (!pki.ok()) {
        ADD_FAILURE() << pki.Describe();
        return false;
      }
      conf += "  tls:\n    certificate: " + d + "/server.crt\n    key: " + d +
              "/server.key\nauth:\n  htpasswd:\n    realm: bunker-test\n    path: " + d +
              "/htpasswd\n";
    }
    if (!WriteFile(dir / "config.yml", conf).ok()) {
      return false;
    }
    SpawnOptions options;
    options.log_path = dir / "registry.log";
    auto p = Process::Start({"docker-registry", "serve", (dir / "config.yml").string()}, options);
    if (!p.ok()) {
      return false;
    }
    process_ = std::move(p).value();
    for (int i = 0; i < 200; ++i) {
      if (PortAcceptsConnections(port_)) {
        return true;
      }
      if (!process_.Running()) {
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  std::string Address() const { return "127.0.0.1:" + std::to_string(port_); }
  fs::path Ca() const { return dir_ / "ca.crt"; }
  std::string Log() const {
    auto log = ReadFile(dir_ / "registry.log");
    return log.ok() ? *log : "(no log)";
  }

 private:
  uint16_t port_ = 0;
  fs::path dir_;
  Process process_;
};

TEST_F(BundleTest, ImagesLandInARegistryWithTheBundlesDigestsAndManifestsNameThem) {
  Registry registry;
  ASSERT_TRUE(registry.Start(Scratch() / "registry")) << registry.Log();
  fs::path kube = Scratch() / "kube";
  RunResult r = Install(Bundle(), {"--images-only", "--registry", registry.Address(),
                                   "--registry-insecure", "--kube-dir", kube.string()});
  ASSERT_TRUE(r.ok()) << r.Describe();
  for (const std::string name : {"bunkerd", "bunker-agent"}) {
    std::string ref = registry.Address() + "/bunker/" + name + ":" + kVersion;
    RunResult i = RunTool({"skopeo", "inspect", "--tls-verify=false", "docker://" + ref});
    ASSERT_TRUE(i.ok()) << i.Describe();
    json info = json::parse(i.out);
    EXPECT_EQ(info["Digest"], ArchiveDigest(name)) << i.out;
    EXPECT_TRUE(Contains(r.out, ref + "@" + ArchiveDigest(name) + " (digest matches the bundle)"))
        << r.out;
  }
  std::string agent_ref =
      registry.Address() + "/bunker/bunker-agent:" + kVersion + "@" + ArchiveDigest("bunker-agent");
  EXPECT_TRUE(Contains(r.out, "kubectl apply -f " + (kube / "bunker-agent.yaml").string()))
      << r.out;

  // The rendered manifests parse as YAML and name the mirrored image.
  RunResult y = RunTool({"python3", "-c",
                         "import sys, yaml\n"
                         "docs = list(yaml.safe_load_all(open(sys.argv[1])))\n"
                         "print(' '.join(d['kind'] for d in docs))\n"
                         "ds = [d for d in docs if d['kind'] == 'DaemonSet'][0]\n"
                         "spec = ds['spec']['template']['spec']\n"
                         "for c in spec['initContainers'] + spec['containers']: print(c['image'])\n"
                         "print(spec['automountServiceAccountToken'])\n",
                         (kube / "bunker-agent.yaml").string()});
  ASSERT_TRUE(y.ok()) << y.Describe();
  EXPECT_TRUE(Contains(y.out, "Namespace ServiceAccount DaemonSet\n")) << y.out;
  EXPECT_TRUE(Contains(y.out, agent_ref + "\n" + agent_ref + "\n")) << y.out;
  EXPECT_TRUE(Contains(y.out, "False")) << y.out;
  auto rendered = ReadFile(kube / "bunker-agent.yaml");
  ASSERT_TRUE(rendered.ok());
  EXPECT_FALSE(Contains(*rendered, "@BUNKER")) << "a placeholder was left";
}

}  // namespace
}  // namespace bunker::testing

namespace bunker::testing {
namespace {

TEST_F(BundleTest, ImagesLandInATlsRegistryWithCredentialsAndOnlyWithThem) {
  Registry registry;
  ASSERT_TRUE(registry.Start(Scratch() / "registry", /*secure=*/true)) << registry.Log();
  fs::path kube = Scratch() / "kube";
  std::vector<std::string> base = {"--images-only", "--registry", registry.Address(), "--kube-dir",
                                   kube.string()};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return Install(Bundle(), args);
  };

  // Without the CA the registry's certificate is not trusted.
  RunResult r = with({"--registry-creds", "mirror:mirror-pw"});
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_TRUE(Contains(r.err, "certificate")) << r.err;
  // Without credentials, or with wrong ones, the registry refuses the push.
  r = with({"--registry-ca", registry.Ca().string()});
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  r = with({"--registry-ca", registry.Ca().string(), "--registry-creds", "mirror:wrong"});
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_FALSE(fs::exists(kube / "bunker-agent.yaml"));

  r = with({"--registry-ca", registry.Ca().string(), "--registry-creds", "mirror:mirror-pw"});
  ASSERT_TRUE(r.ok()) << r.Describe() << registry.Log();
  EXPECT_FALSE(Contains(r.out, "mirror-pw")) << "the password was printed";
  for (const std::string name : {"bunkerd", "bunker-agent"}) {
    EXPECT_TRUE(Contains(r.out, registry.Address() + "/bunker/" + name + ":" + kVersion + "@" +
                                    ArchiveDigest(name) + " (digest matches the bundle)"))
        << r.out;
  }
  EXPECT_TRUE(fs::exists(kube / "bunker-agent.yaml"));
}

}  // namespace
}  // namespace bunker::testing

// Clusters over real HTTPS: bunkerd parses the kubeconfig, keeps its
// credentials sealed, and probes GET /version of a real HTTPS server on
// loopback (Python's http.server with ssl, certificates made by the openssl
// CLI in the test): reachable with a token or a client certificate, wrong
// CA, wrong token, connection refused, insecure-skip-tls-verify, and a
// cluster registered while down that a later probe finds up.

#include <thread>

#include "nodeagent/core/util/bytes.h"
#include "tests/integration/appliance/bunkerd_fixture.h"

namespace bunker::testing {
namespace {

using json = nlohmann::json;

constexpr const char* kVersionServer = R"py(
import http.server, json, ssl, sys
port, cert, key, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/version":
            code, body = 404, {"kind": "Status", "code": 404}
        elif (self.headers.get("Authorization") == "Bearer good-token"
              or self.connection.getpeercert()):
            code, body = 200, {"major": "1", "minor": "29", "gitVersion": "v1.29.3-bunker-test"}
        else:
            code, body = 401, {"kind": "Status", "code": 401}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca)
ctx.verify_mode = ssl.CERT_OPTIONAL
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
)py";

class BunkerdClusterTest : public BunkerdFixture {
 protected:
  void SetUp() override {
    if (!FindExecutable("python3").ok() || !FindExecutable("openssl").ok()) {
      GTEST_SKIP() << "python3 and openssl are needed for the /version server";
    }
    BunkerdFixture::SetUp();
    if (IsSkipped() || HasFatalFailure()) {
      return;
    }
    auto pki = dir_.MakeSubdir("pki");
    ASSERT_TRUE(pki.ok());
    pki_ = pki->string();
    ASSERT_NO_FATAL_FAILURE(MakeCa("ca"));
    ASSERT_NO_FATAL_FAILURE(MakeCa("other-ca"));
    ASSERT_NO_FATAL_FAILURE(MakeLeaf("server", "ca", "subjectAltName=IP:127.0.0.1"));
    ASSERT_NO_FATAL_FAILURE(MakeLeaf("client", "ca", "extendedKeyUsage=clientAuth"));
  }

  void OpenSsl(std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    auto run = RunCommand(args);
    ASSERT_TRUE(run.ok() && run->ok()) << (run.ok() ? run->Describe() : "");
  }
  void MakeCa(const std::string& name) {
    OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", pki_ + "/" + name + ".key", "-out", pki_ + "/" + name + ".pem", "-days",
             "2", "-subj", "/CN=" + name});
  }
  void MakeLeaf(const std::string& name, const std::string& ca, const std::string& ext) {
    ASSERT_TRUE(WriteFile(pki_ + "/" + name + ".ext", ext + "\n").ok());
    OpenSsl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", pki_ + "/" + name + ".key", "-out", pki_ + "/" + name + ".csr", "-subj",
             "/CN=" + name});
    OpenSsl({"x509", "-req", "-in", pki_ + "/" + name + ".csr", "-CA", pki_ + "/" + ca + ".pem",
             "-CAkey", pki_ + "/" + ca + ".key", "-CAcreateserial", "-out",
             pki_ + "/" + name + ".pem", "-days", "2", "-extfile", pki_ + "/" + name + ".ext"});
  }
  std::string Pem64(const std::string& file) {
    auto text = ReadFile(pki_ + "/" + file);
    EXPECT_TRUE(text.ok());
    return Base64Encode(ByteSpan(reinterpret_cast<const uint8_t*>(text->data()), text->size()));
  }

  // Starts the /version server on `port` and waits until it answers.
  void StartVersionServer(uint16_t port) {
    ASSERT_TRUE(WriteFile(dir_.path() / "version_server.py", kVersionServer).ok());
    SpawnOptions options;
    options.log_path = dir_.path() / "version_server.log";
    auto proc = Process::Start(
        {"python3", (dir_.path() / "version_server.py").string(), std::to_string(port),
         pki_ + "/server.pem", pki_ + "/server.key", pki_ + "/ca.pem"},
        options);
    ASSERT_TRUE(proc.ok()) << proc.status().ToString();
    version_server_ = std::move(proc).value();
    for (int i = 0; i < 200; ++i) {
      auto run = RunCommand({"curl", "-s", "-o", "/dev/null", "--cacert", pki_ + "/ca.pem",
                             "https://127.0.0.1:" + std::to_string(port) + "/version"});
      if (run.ok() && run->ok()) {
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "the /version server did not come up";
  }

  // A kubeconfig for https://127.0.0.1:port; `cluster_extra` and `user`
  // are YAML lines under cluster: and user:.
  static std::string Kubeconfig(uint16_t port, const std::string& cluster_extra,
                                const std::string& user) {
    return "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
           "clusters:\n- name: test-cluster\n  cluster:\n    server: https://127.0.0.1:" +
           std::to_string(port) + "\n" + cluster_extra +
           "contexts:\n- name: test\n  context:\n    cluster: test-cluster\n    user: u\n"
           "users:\n- name: u\n  user:\n" +
           user;
  }
  std::string Ca(const std::string& ca = "ca") {
    return "    certificate-authority-data: " + Pem64(ca + ".pem") + "\n";
  }

  ApiReply AddCluster(const std::string& name, const std::string& kubeconfig) {
    return Curl("POST", "/api/v1/clusters", admin_,
                json{{"name", name}, {"kubeconfig", kubeconfig}, {"data_mover", "csi"}});
  }

  std::string pki_;
  Process version_server_;
};

TEST_F(BunkerdClusterTest, StatusProbeReachableWrongCaRefusedAndLater) {
  auto ports = PickFreePorts(2);
  ASSERT_TRUE(ports.ok());
  uint16_t up = (*ports)[0];
  uint16_t later = (*ports)[1];

  // Registered while nothing listens: stored, unreachable, reason given.
  ApiReply down = AddCluster("later", Kubeconfig(later, Ca(), "    token: good-token\n"));
  ASSERT_EQ(down.status, 201) << down.raw;
  EXPECT_EQ(down.body["status"]["reachable"], false);
  EXPECT_NE(down.body["status"]["reason"].get<std::string>().find("refused"), std::string::npos)
      << down.raw;
  EXPECT_TRUE(down.body["status"]["checked_at"].is_string());

  ASSERT_NO_FATAL_FAILURE(StartVersionServer(up));
  ApiReply ok = AddCluster("prod", Kubeconfig(up, Ca(), "    token: good-token\n"));
  ASSERT_EQ(ok.status, 201) << ok.raw;
  EXPECT_EQ(ok.body["status"]["reachable"], true) << ok.raw;
  EXPECT_EQ(ok.body["status"]["version"], "v1.29.3-bunker-test");
  EXPECT_TRUE(ok.body["status"]["reason"].is_null());
  EXPECT_EQ(ok.body["server"], "https://127.0.0.1:" + std::to_string(up));
  EXPECT_EQ(ok.body["data_mover"], "csi");
  EXPECT_EQ(ok.body["context"], "test");
  EXPECT_EQ(ok.raw.find("good-token"), std::string::npos) << "credentials are write-only";
  EXPECT_FALSE(ok.body.contains("kubeconfig"));

  ApiReply cert =
      AddCluster("by-cert", Kubeconfig(up, Ca(),
                                       "    client-certificate-data: " + Pem64("client.pem") +
                                           "\n    client-key-data: " + Pem64("client.key") + "\n"));
  ASSERT_EQ(cert.status, 201) << cert.raw;
  EXPECT_EQ(cert.body["status"]["reachable"], true) << cert.raw;

  ApiReply wrong_ca = AddCluster("wrong-ca", Kubeconfig(up, Ca("other-ca"), "    token: t\n"));
  ASSERT_EQ(wrong_ca.status, 201) << wrong_ca.raw;
  EXPECT_EQ(wrong_ca.body["status"]["reachable"], false);
  EXPECT_NE(wrong_ca.body["status"]["reason"].get<std::string>().find("certificate verify failed"),
            std::string::npos)
      << wrong_ca.raw;

  ApiReply wrong_token = AddCluster("wrong-token", Kubeconfig(up, Ca(), "    token: bad\n"));
  ASSERT_EQ(wrong_token.status, 201) << wrong_token.raw;
  EXPECT_EQ(wrong_token.body["status"]["reachable"], false);
  EXPECT_NE(wrong_token.body["status"]["reason"].get<std::string>().find("401"), std::string::npos);

  // No CA and no skip: the system store does not trust the test CA.
  ApiReply no_ca = AddCluster("no-ca", Kubeconfig(up, "", "    token: good-token\n"));
  EXPECT_EQ(no_ca.body["status"]["reachable"], false) << no_ca.raw;
  ApiReply skip = AddCluster(
      "skip", Kubeconfig(up, "    insecure-skip-tls-verify: true\n", "    token: good-token\n"));
  EXPECT_EQ(skip.body["status"]["reachable"], true) << skip.raw;

  // The one registered while down: started on its port now, probed again.
  version_server_.Stop();
  ASSERT_NO_FATAL_FAILURE(StartVersionServer(later));
  std::string path = "/api/v1/clusters/" + std::to_string(down.body["id"].get<int>());
  ApiReply probed = Curl("POST", path + "/probe", admin_);
  ASSERT_EQ(probed.status, 200) << probed.raw;
  EXPECT_EQ(probed.body["status"]["reachable"], true) << probed.raw;
  EXPECT_EQ(Curl("GET", path, admin_).body["status"]["reachable"], true);

  // PATCH: data mover, and a new kubeconfig (probed again, now unreachable).
  ApiReply mover = Curl("PATCH", path, admin_, json{{"data_mover", "generic"}});
  ASSERT_EQ(mover.status, 200) << mover.raw;
  EXPECT_EQ(mover.body["data_mover"], "generic");
  EXPECT_EQ(mover.body["status"]["reachable"], true);
  ApiReply moved = Curl(
      "PATCH", path, admin_,
      json{{"kubeconfig", Kubeconfig(up, Ca(), "    token: good-token\n")}, {"name", "moved"}});
  ASSERT_EQ(moved.status, 200) << moved.raw;
  EXPECT_EQ(moved.body["name"], "moved");
  EXPECT_EQ(moved.body["status"]["reachable"], false);
  EXPECT_EQ(Curl("POST", path + "/probe", admin_).body["status"]["reachable"], false);

  // Credentials are sealed in the datastore.
  for (const char* f : {"bunker.db", "bunker.db-wal"}) {
    auto raw = ReadFile(data_ + "/" + f);
    if (raw.ok()) {
      EXPECT_EQ(raw->find("good-token"), std::string::npos) << f;
    }
  }
}

TEST_F(BunkerdClusterTest, BadKubeconfigsAreRefusedNamingTheField) {
  struct Case {
    std::string kubeconfig;
    std::string in_message;
  };
  std::vector<Case> cases = {
      {"{not yaml: [", "kubeconfig"},
      {"- just\n- a list\n", "kubeconfig"},
      {"apiVersion: v1\nkind: Config\n", "current-context"},
      {"current-context: a\ncontexts:\n- name: a\n  context:\n    cluster: missing\n",
       "contexts[name=a].context.cluster"},
      {"current-context: a\ncontexts:\n- name: a\n  context:\n    cluster: c\n"
       "clusters:\n- name: c\n  cluster:\n    insecure-skip-tls-verify: true\n",
       "clusters[name=c].cluster.server"},
      {"current-context: a\ncontexts:\n- name: a\n  context:\n    cluster: c\n"
       "clusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:1\n",
       "clusters[name=c].cluster.server"},
      {Kubeconfig(1, "    certificate-authority-data: '%%%'\n", ""), "certificate-authority-data"},
      {Kubeconfig(1, "", "    client-certificate-data: " + Pem64("client.pem") + "\n"),
       "client-key-data"},
      {Kubeconfig(1, "", "    tokenFile: /etc/token\n"), "tokenFile"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.kubeconfig);
    ApiReply r = AddCluster("bad", c.kubeconfig);
    EXPECT_EQ(r.status, 400) << r.raw;
    EXPECT_TRUE(r.body["details"]["fields"].contains("kubeconfig")) << r.raw;
    EXPECT_NE(r.body["message"].get<std::string>().find(c.in_message), std::string::npos) << r.raw;
  }
  ApiReply mover = Curl("POST", "/api/v1/clusters", admin_,
                        json{{"name", "bad"},
                             {"kubeconfig", Kubeconfig(1, "", "    token: t\n")},
                             {"data_mover", "tape"}});
  EXPECT_EQ(mover.status, 400);
  EXPECT_TRUE(mover.body["details"]["fields"].contains("data_mover")) << mover.raw;
  ApiReply context = Curl("POST", "/api/v1/clusters", admin_,
                          json{{"name", "bad"},
                               {"kubeconfig", Kubeconfig(1, "", "    token: t\n")},
                               {"context", "nope"}});
  EXPECT_EQ(context.status, 400);
  EXPECT_NE(context.raw.find("context"), std::string::npos) << context.raw;
  EXPECT_TRUE(Curl("GET", "/api/v1/clusters", admin_).body["items"].empty());
}

}  // namespace
}  // namespace bunker::testing

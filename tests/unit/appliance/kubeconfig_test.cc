// Kubeconfig parsing: the context chosen, the server, CA, credentials, and
// errors naming the kubeconfig field.

#include "appliance/kube/kubeconfig.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "appliance/kube/version_probe.h"

#include "nodeagent/core/util/bytes.h"

namespace bunker::kube {
namespace {

std::string B64(const std::string& s) {
  return Base64Encode(ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

const std::string kCa = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

std::string TwoContexts() {
  return "apiVersion: v1\nkind: Config\ncurrent-context: prod\n"
         "clusters:\n"
         "- name: prod-cluster\n  cluster:\n    server: https://10.0.0.1:6443/\n"
         "    certificate-authority-data: " +
         B64(kCa) +
         "\n"
         "- name: lab-cluster\n  cluster:\n    server: https://lab.corp\n"
         "    insecure-skip-tls-verify: true\n"
         "contexts:\n"
         "- name: prod\n  context:\n    cluster: prod-cluster\n    user: admin\n"
         "- name: lab\n  context:\n    cluster: lab-cluster\n    user: cert\n"
         "users:\n"
         "- name: admin\n  user:\n    token: sekrit\n"
         "- name: cert\n  user:\n    client-certificate-data: " +
         B64(kCa) + "\n    client-key-data: " +
         B64("-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n") + "\n";
}

TEST(KubeconfigTest, CurrentContextGivesServerCaAndToken) {
  auto kc = ParseKubeconfig(TwoContexts());
  ASSERT_TRUE(kc.ok()) << kc.status().ToString();
  EXPECT_EQ(kc->context, "prod");
  EXPECT_EQ(kc->server, "https://10.0.0.1:6443");
  EXPECT_EQ(kc->ca_pem, kCa);
  EXPECT_FALSE(kc->insecure_skip_tls_verify);
  EXPECT_EQ(kc->token, "sekrit");
  EXPECT_TRUE(kc->client_cert_pem.empty());
}

TEST(KubeconfigTest, NamedContextGivesClientCertificateAndSkipVerify) {
  auto kc = ParseKubeconfig(TwoContexts(), "lab");
  ASSERT_TRUE(kc.ok()) << kc.status().ToString();
  EXPECT_EQ(kc->server, "https://lab.corp");
  EXPECT_TRUE(kc->insecure_skip_tls_verify);
  EXPECT_TRUE(kc->ca_pem.empty());
  EXPECT_TRUE(kc->token.empty());
  EXPECT_EQ(kc->client_cert_pem, kCa);
  EXPECT_NE(kc->client_key_pem.find("PRIVATE KEY"), std::string::npos);
}

TEST(KubeconfigTest, ErrorsNameTheField) {
  struct Case {
    std::string yaml;
    std::string context;
    std::string field;
  };
  std::string base = TwoContexts();
  std::vector<Case> cases = {
      {"", "", "kubeconfig"},
      {"[1, 2]", "", "kubeconfig"},
      {"{a: [", "", "kubeconfig"},
      {base, "nope", "context"},
      {"contexts: []\n", "", "current-context"},
      {"current-context: a\ncontexts:\n- name: a\n  context: {}\n", "",
       "contexts[name=a].context.cluster"},
      {"current-context: a\ncontexts:\n- name: a\n  context:\n    cluster: c\nclusters:\n- name: "
       "c\n  cluster:\n    server: [1]\n",
       "", "clusters[name=c].cluster.server"},
      {"current-context: a\ncontexts:\n- name: a\n  context:\n    cluster: c\nclusters:\n- name: "
       "c\n  cluster:\n    server: https://x\n    certificate-authority: /ca.pem\n",
       "", "clusters[name=c].cluster.certificate-authority"},
      {"current-context: a\ncontexts:\n- name: a\n  context:\n    cluster: c\nclusters:\n- name: "
       "c\n  cluster:\n    server: https://x\n    certificate-authority-data: " +
           B64("not pem") + "\n",
       "", "certificate-authority-data"},
      {"current-context: a\ncontexts:\n- name: a\n  context:\n    cluster: c\n    user: u\n"
       "clusters:\n- name: c\n  cluster:\n    server: https://x\nusers:\n- name: u\n  user:\n"
       "    exec: {command: aws}\n",
       "", "users[name=u].user.exec"},
      {"current-context: a\ncontexts:\n- name: a\n  context:\n    cluster: c\nclusters:\n- name: "
       "c\n  cluster:\n    server: https://x\n    insecure-skip-tls-verify: maybe\n",
       "", "insecure-skip-tls-verify"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.yaml);
    auto kc = ParseKubeconfig(c.yaml, c.context);
    ASSERT_FALSE(kc.ok());
    EXPECT_EQ(kc.status().code(), Code::kInvalidArgument);
    EXPECT_NE(kc.status().message().find(c.field), std::string::npos) << kc.status().ToString();
    EXPECT_EQ(kc.status().message().find("sekrit"), std::string::npos);
  }
}

TEST(KubeconfigTest, OnlyContextIsUsedWithoutCurrentContext) {
  auto kc = ParseKubeconfig(
      "contexts:\n- name: a\n  context:\n    cluster: c\nclusters:\n- name: c\n  cluster:\n"
      "    server: https://[::1]:6443\n");
  ASSERT_TRUE(kc.ok()) << kc.status().ToString();
  EXPECT_EQ(kc->context, "a");
  EXPECT_EQ(kc->server, "https://[::1]:6443");
}

// A server that accepts the TCP connection (the kernel does, from the
// backlog) but never answers the TLS handshake: the probe gives up at its
// deadline, says so, and returns (no thread or socket left behind).
TEST(VersionProbeTest, SilentServerEndsAtTheDeadline) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 8), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  KubeConfig kc;
  kc.server = "https://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  kc.token = "sekrit";
  ProbeResult r = ProbeVersion(kc, std::chrono::milliseconds(300));
  EXPECT_FALSE(r.reachable);
  EXPECT_NE(r.reason.find("no answer"), std::string::npos) << r.reason;
  EXPECT_EQ(r.reason.find("sekrit"), std::string::npos);
  close(fd);
}

TEST(VersionProbeTest, RefusedConnectionIsAReason) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  KubeConfig kc;  // bound but not listening: connections are refused
  kc.server = "https://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  ProbeResult r = ProbeVersion(kc, std::chrono::seconds(5));
  EXPECT_FALSE(r.reachable);
  EXPECT_NE(r.reason.find("refused"), std::string::npos) << r.reason;
  close(fd);
}

}  // namespace
}  // namespace bunker::kube

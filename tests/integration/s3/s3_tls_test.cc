// S3 over https: s3rver with a certificate from a test CA (made with the
// openssl CLI). The backend verifies the server against a CA bundle file
// (on-premises stores with an internal CA), checks the host name or IP
// against the certificate, sends SNI, and fails clearly when the chain or
// the name does not verify.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "nodeagent/core/backend/probe.h"
#include "tests/harness/temp_dir.h"
#include "tests/integration/s3/s3_test_util.h"
#include "tests/integration/s3/tls_s3rver.h"

namespace bunker::backend {
namespace {

namespace fs = std::filesystem;
using s3test::FastRetry;
using s3test::kTlsBucket;
using s3test::MakeCertificates;
using s3test::MustOpenRetrying;
using s3test::OptionsFor;
using s3test::RandomData;
using s3test::TlsS3rver;

class S3TlsTest : public ::testing::Test {
 protected:
  // Starts s3rver with a certificate for `san`, signed by "ca"; "other-ca"
  // exists too but signed nothing this server presents.
  void StartServer(const std::string& san) {
    Result<testing::TempDir> tmp = testing::TempDir::Create("s3-tls");
    ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();
    tmp_ = std::move(*tmp);
    Status st = MakeCertificates(tmp_.path(), "ca", san);
    ASSERT_TRUE(st.ok()) << st.ToString();
    st = MakeCertificates(tmp_.path(), "other-ca", san);
    ASSERT_TRUE(st.ok()) << st.ToString();
    Result<std::unique_ptr<TlsS3rver>> server =
        TlsS3rver::Start(tmp_.path() / "ca-server.key", tmp_.path() / "ca-server.pem", tmp_.path());
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
  }

  S3Options Options(const std::string& host, const std::string& ca = "ca") {
    S3Options o = OptionsFor("https://" + host + ":" + std::to_string(server_->port()),
                             std::string(kTlsBucket), "repo");
    if (!ca.empty()) o.ca_file = (tmp_.path() / (ca + ".pem")).string();
    return o;
  }

  testing::TempDir tmp_;
  std::unique_ptr<TlsS3rver> server_;
};

TEST_F(S3TlsTest, WorksWithACustomCaBundleOverIpAndHostName) {
  StartServer("IP:127.0.0.1,DNS:localhost");
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    std::unique_ptr<RetryingBackend> b = MustOpenRetrying(Options(host), FastRetry(8));
    ASSERT_NE(b, nullptr);
    Bytes data = RandomData(3 << 20, 5);
    Status put = b->Put("data/" + host, data);
    ASSERT_TRUE(put.ok()) << put.ToString();
    Result<Bytes> got = b->Get("data/" + host);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(*got == data);
    Status probe = ProbeBackend(b.get());
    EXPECT_TRUE(probe.ok()) << probe.ToString();
  }
}

TEST_F(S3TlsTest, UnsignedPayloadIsUsedOverTls) {
  StartServer("IP:127.0.0.1");
  S3Options o = Options("127.0.0.1");
  o.unsigned_payload = true;
  o.multipart_threshold = 6 << 20;
  o.part_size = 5 << 20;
  std::unique_ptr<RetryingBackend> b = MustOpenRetrying(o, FastRetry(8));
  Bytes small = RandomData(100000, 6), big = RandomData(11 << 20, 7);
  ASSERT_TRUE(b->Put("data/small", small).ok());
  ASSERT_TRUE(b->Put("data/big", big).ok());
  EXPECT_TRUE(*b->Get("data/small") == small);
  EXPECT_TRUE(*b->Get("data/big") == big);
}

TEST_F(S3TlsTest, TheSystemStoreDoesNotTrustAnInternalCa) {
  StartServer("IP:127.0.0.1");
  std::unique_ptr<RetryingBackend> b = MustOpenRetrying(Options("127.0.0.1", ""), FastRetry(8));
  Status st = b->Put("config", AsBytes("x"));
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);
  EXPECT_FALSE(st.IsRetryable());
  EXPECT_EQ(b->retries(), 0u);
  EXPECT_NE(st.message().find("s3 PUT s3://bunker-tls/repo/config at https://127.0.0.1:" +
                              std::to_string(server_->port()) +
                              ": TLS handshake failed: "
                              "certificate verify failed: "),
            std::string::npos)
      << st.message();
}

TEST_F(S3TlsTest, AnotherCaIsRefused) {
  StartServer("IP:127.0.0.1");
  std::unique_ptr<RetryingBackend> b =
      MustOpenRetrying(Options("127.0.0.1", "other-ca"), FastRetry(8));
  Status st = b->Put("config", AsBytes("x"));
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);
  EXPECT_NE(st.message().find("certificate verify failed"), std::string::npos) << st.message();
}

TEST_F(S3TlsTest, TheNameOrIpMustMatchTheCertificate) {
  StartServer("DNS:s3.other.invalid");
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    std::unique_ptr<RetryingBackend> b = MustOpenRetrying(Options(host), FastRetry(8));
    Status st = b->Put("config", AsBytes("x"));
    EXPECT_EQ(st.code(), Code::kFailedPrecondition) << host;
    std::string want = host == "localhost" ? "hostname mismatch" : "IP address mismatch";
    EXPECT_NE(st.message().find("certificate verify failed: " + want), std::string::npos)
        << st.message();
  }
}

TEST_F(S3TlsTest, PlainHttpToATlsPortFailsClearly) {
  StartServer("IP:127.0.0.1");
  S3Options o = OptionsFor("http://127.0.0.1:" + std::to_string(server_->port()),
                           std::string(kTlsBucket), "repo");
  S3Options fast = o;
  fast.io_timeout = std::chrono::milliseconds(2000);
  std::unique_ptr<RetryingBackend> b = MustOpenRetrying(fast, FastRetry(2));
  Status st = b->Put("config", AsBytes("x"));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("s3 PUT s3://bunker-tls/repo/config at http://127.0.0.1:"),
            std::string::npos)
      << st.message();
}

}  // namespace
}  // namespace bunker::backend

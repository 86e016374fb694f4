// S3 backend pieces that need no server: endpoint parsing, credentials,
// option checks and addressing style. Requests against a real server are in
// tests/integration/s3/.

#include "nodeagent/core/backend/s3_backend.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "nodeagent/core/backend/http_client.h"
#include "nodeagent/core/backend/retrying_backend.h"

namespace bunker::backend {
namespace {

TEST(HttpEndpointTest, ParsesHostsPortsAndSchemes) {
  Result<HttpEndpoint> ep = ParseHttpEndpoint("http://127.0.0.1:9000");
  ASSERT_TRUE(ep.ok());
  EXPECT_FALSE(ep->tls);
  EXPECT_EQ(ep->host, "127.0.0.1");
  EXPECT_EQ(ep->port, 9000);
  EXPECT_EQ(ep->HostHeader(), "127.0.0.1:9000");

  ep = ParseHttpEndpoint("https://minio.corp/");
  ASSERT_TRUE(ep.ok());
  EXPECT_TRUE(ep->tls);
  EXPECT_EQ(ep->port, 443);
  EXPECT_EQ(ep->HostHeader(), "minio.corp");
  EXPECT_EQ(ep->ToString(), "https://minio.corp");

  ep = ParseHttpEndpoint("http://[::1]:9000");
  ASSERT_TRUE(ep.ok());
  EXPECT_EQ(ep->host, "::1");
  EXPECT_EQ(ep->HostHeader(), "[::1]:9000");

  for (const char* bad : {"", "minio:9000", "ftp://x", "http://", "http://:9000", "http://h:",
                          "http://h:0", "http://h:65536", "http://h:9x", "http://h/path",
                          "http://user@h", "http://[::1", "http://[zz]:1", "https://h?x=1"}) {
    Result<HttpEndpoint> r = ParseHttpEndpoint(bad);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
  }
}

TEST(S3CredentialsTest, ParsesProfilesOfASharedCredentialsFile) {
  const std::string text =
      "# comment\n[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key=SECRET1\n\n"
      "[backup]\r\n  AWS_ACCESS_KEY_ID=AKIDBACKUP  \r\naws_secret_access_key = S/E+C=2\r\n"
      "aws_session_token = TOKEN\r\n[profile other]\naws_access_key_id=X\naws_secret_access_key=Y\n"
      "[broken]\naws_access_key_id=only\n";
  Result<S3Credentials> d = ParseSharedCredentials(text, "default");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->access_key_id, "AKIDDEFAULT");
  EXPECT_EQ(d->secret_access_key, "SECRET1");
  Result<S3Credentials> b = ParseSharedCredentials(text, "backup");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->access_key_id, "AKIDBACKUP");
  EXPECT_EQ(b->secret_access_key, "S/E+C=2");
  EXPECT_EQ(b->session_token, "TOKEN");
  EXPECT_TRUE(ParseSharedCredentials(text, "other").ok());
  EXPECT_EQ(ParseSharedCredentials(text, "missing").status().code(), Code::kNotFound);
  Result<S3Credentials> broken = ParseSharedCredentials(text, "broken");
  EXPECT_EQ(broken.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(broken.status().message().find("only"), std::string::npos) << "no key in messages";
}

// Sets environment variables for one test and restores them.
class ScopedEnv {
 public:
  void Set(const char* name, const std::string& value) {
    Save(name);
    setenv(name, value.c_str(), 1);
  }
  void Unset(const char* name) {
    Save(name);
    unsetenv(name);
  }
  ~ScopedEnv() {
    for (auto& [name, value] : saved_) {
      if (value) {
        setenv(name.c_str(), value->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
  }

 private:
  void Save(const char* name) {
    const char* v = getenv(name);
    saved_.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST(S3CredentialsTest, EnvironmentFirstThenTheSharedFileAndProfile) {
  ScopedEnv env;
  std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("bunker-creds-" + std::to_string(getpid()));
  {
    std::ofstream out(file);
    out << "[default]\naws_access_key_id=FILEKEY\naws_secret_access_key=FILESECRET\n"
           "[ops]\naws_access_key_id=OPSKEY\naws_secret_access_key=OPSSECRET\n";
  }
  env.Set("AWS_ACCESS_KEY_ID", "ENVKEY");
  env.Set("AWS_SECRET_ACCESS_KEY", "ENVSECRET");
  env.Set("AWS_SESSION_TOKEN", "ENVTOKEN");
  env.Set("AWS_SHARED_CREDENTIALS_FILE", file.string());
  Result<S3Credentials> c = LoadS3Credentials();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key_id, "ENVKEY");
  EXPECT_EQ(c->session_token, "ENVTOKEN");
  EXPECT_EQ(c->source, "environment");

  env.Unset("AWS_ACCESS_KEY_ID");
  EXPECT_EQ(LoadS3Credentials().status().code(), Code::kInvalidArgument) << "half a pair";
  env.Unset("AWS_SECRET_ACCESS_KEY");
  env.Unset("AWS_SESSION_TOKEN");
  c = LoadS3Credentials();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "FILEKEY");
  env.Set("AWS_PROFILE", "ops");
  c = LoadS3Credentials();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key_id, "OPSKEY");
  EXPECT_NE(c->source.find("[ops]"), std::string::npos);
  env.Set("AWS_PROFILE", "nope");
  Result<S3Credentials> none = LoadS3Credentials();
  EXPECT_EQ(none.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(none.status().message().find("no profile [nope]"), std::string::npos)
      << none.status().message();
  std::filesystem::remove(file);
  env.Unset("AWS_PROFILE");
  env.Set("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials");
  none = LoadS3Credentials();
  EXPECT_EQ(none.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(none.status().message().find("cannot be read"), std::string::npos);
}

S3Options Options(std::string endpoint, std::string bucket = "bunker-test") {
  S3Options o;
  o.bucket = std::move(bucket);
  o.prefix = "repo";
  o.endpoint = std::move(endpoint);
  o.credentials = {"AKID", "SECRET", "", "test"};
  return o;
}

TEST(S3BackendOpenTest, ChoosesTheAddressingStyle) {
  auto style = [](S3Options o) -> std::string {
    Result<std::unique_ptr<S3Backend>> b = S3Backend::Open(std::move(o));
    if (!b.ok()) return b.status().ToString();
    return (*b)->path_style() ? "path" : "virtual";
  };
  EXPECT_EQ(style(Options("http://127.0.0.1:9000")), "path");
  EXPECT_EQ(style(Options("https://minio.corp:9000")), "path");
  EXPECT_EQ(style(Options("")), "virtual");                   // AWS
  EXPECT_EQ(style(Options("", "my.dotted.bucket")), "path");  // wildcard cert
  EXPECT_EQ(style(Options("", "Upper_Case")), "path");        // not a DNS name
  S3Options forced = Options("https://minio.corp:9000");
  forced.addressing_style = S3AddressingStyle::kVirtualHosted;
  EXPECT_EQ(style(forced), "virtual");
  forced = Options("http://127.0.0.1:9000");
  forced.addressing_style = S3AddressingStyle::kVirtualHosted;
  EXPECT_NE(style(forced).find("InvalidArgument"), std::string::npos);
  forced = Options("");
  forced.addressing_style = S3AddressingStyle::kPath;
  EXPECT_EQ(style(forced), "path");
}

TEST(S3BackendOpenTest, DescribesTheLocationWithoutCredentials) {
  S3Options o = Options("http://127.0.0.1:9000");
  o.prefix = "/clusters/prod/";
  Result<std::unique_ptr<S3Backend>> b = S3Backend::Open(o);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)->Describe(), "s3://bunker-test/clusters/prod at http://127.0.0.1:9000");
  EXPECT_EQ((*b)->Describe().find("SECRET"), std::string::npos);
  o = Options("");
  o.region = "eu-west-1";
  b = S3Backend::Open(o);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)->Describe(), "s3://bunker-test/repo at https://s3.eu-west-1.amazonaws.com");
}

TEST(S3BackendOpenTest, RefusesBadOptionsClearly) {
  auto code = [](S3Options o) { return S3Backend::Open(std::move(o)).status(); };
  EXPECT_EQ(code(Options("http://h:1", "")).code(), Code::kInvalidArgument);
  EXPECT_EQ(code(Options("http://h:1", "bad/bucket")).code(), Code::kInvalidArgument);
  EXPECT_EQ(code(Options("minio:9000")).code(), Code::kInvalidArgument);
  S3Options o = Options("http://h:1");
  o.prefix = "a//b";
  EXPECT_EQ(code(o).code(), Code::kInvalidArgument);
  o = Options("http://h:1");
  o.part_size = 1 << 20;
  EXPECT_EQ(code(o).code(), Code::kInvalidArgument);
  o = Options("https://h:1");
  o.ca_file = "/nonexistent/ca.pem";
  Status st = code(o);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("/nonexistent/ca.pem"), std::string::npos) << st.message();
  o = Options("http://h:1");
  o.credentials.secret_access_key.clear();
  EXPECT_EQ(code(o).code(), Code::kInvalidArgument);
}

TEST(S3BackendOpenTest, RefusesBadNamesWithoutNetwork) {
  // Port 1 on loopback: nothing listens, but names are checked first.
  Result<std::unique_ptr<S3Backend>> b = S3Backend::Open(Options("http://127.0.0.1:1"));
  ASSERT_TRUE(b.ok());
  for (const char* name : {"", "/abs", "a/../b", "a//b", "trailing/", "./x"}) {
    EXPECT_EQ((*b)->Put(name, {}).code(), Code::kInvalidArgument) << name;
    EXPECT_EQ((*b)->Get(name).status().code(), Code::kInvalidArgument) << name;
  }
  EXPECT_EQ((*b)->Put(std::string(1100, 'k'), {}).code(), Code::kInvalidArgument);
}

TEST(S3BackendOpenTest, AnUnreachableServerIsUnavailableNamingEverything) {
  Result<std::unique_ptr<S3Backend>> b = S3Backend::Open(Options("http://127.0.0.1:1"));
  ASSERT_TRUE(b.ok());
  Status st = (*b)->Put("config", AsBytes("x"));
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_TRUE(st.IsRetryable());
  EXPECT_EQ(st.message(),
            "s3 PUT s3://bunker-test/repo/config at http://127.0.0.1:1: connect failed: "
            "Connection refused");
}

TEST(OpenBackendS3Test, WrapsS3InTheRetryingBackend) {
  ScopedEnv env;
  env.Set("AWS_ACCESS_KEY_ID", "AKID");
  env.Set("AWS_SECRET_ACCESS_KEY", "SECRET");
  BackendOptions options;
  options.s3_endpoint = "http://127.0.0.1:9000";
  Result<std::unique_ptr<Backend>> b = OpenBackend("s3://bucket/some/prefix", options, false);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  auto* retrying = dynamic_cast<RetryingBackend*>(b->get());
  ASSERT_NE(retrying, nullptr);
  EXPECT_NE(dynamic_cast<S3Backend*>(retrying->inner()), nullptr);
  EXPECT_EQ((*b)->Describe(), "s3://bucket/some/prefix at http://127.0.0.1:9000");

  EXPECT_EQ(OpenBackend("s3://bucket:9000/p", options, false).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(OpenBackend("s3://bucket/p?region=x", options, false).status().code(),
            Code::kInvalidArgument);
  options.s3_endpoint = "127.0.0.1:9000";
  Result<std::unique_ptr<Backend>> bad = OpenBackend("s3://bucket/p", options, false);
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("expected http://host:port"), std::string::npos);
}

}  // namespace
}  // namespace bunker::backend

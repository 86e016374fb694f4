// SigV4 signing: AWS's published Signature Version 4 test suite (the
// "aws-sig-v4-test-suite": region us-east-1, service "service", 2015-08-30),
// the S3 examples of the S3 API reference (examplebucket, 2013-05-24), and a
// cross-check of every Authorization header against botocore's
// S3SigV4Auth (botocore_sigv4.py, run with python3 from PATH).

#include "nodeagent/core/backend/sigv4.h"

#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nodeagent/core/backend/s3_backend.h"
#include "tests/harness/process.h"

namespace bunker::backend {
namespace {

using sigv4::Pairs;

// ------------------------------------------------------------ the AWS suite

constexpr std::string_view kSuiteAccessKey = "AKIDEXAMPLE";
constexpr std::string_view kSuiteSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr std::string_view kSuiteDate = "20150830T123600Z";
constexpr std::string_view kSuiteHost = "example.amazonaws.com";
constexpr std::string_view kEmpty = sigv4::kEmptyPayloadSha256;

struct SuiteCase {
  std::string name;
  std::string method;
  std::string path;  // as in the .req file (raw)
  Pairs query;       // raw
  Pairs headers;     // besides Host and X-Amz-Date
  std::string body;
  std::string canonical_query;    // expected
  std::string canonical_uri;      // expected
  std::string canonical_headers;  // expected, without host and x-amz-date when empty
  std::string signed_headers;
  std::string sts_hash;   // last line of the .sts file
  std::string signature;  // from the .authz file
};

std::vector<SuiteCase> SuiteCases() {
  const std::string hd = "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n";
  const std::string sh = "host;x-amz-date";
  const std::string unreserved =
      "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  return {
      {"get-vanilla",
       "GET",
       "/",
       {},
       {},
       "",
       "",
       "/",
       hd,
       sh,
       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-vanilla-empty-query-key",
       "GET",
       "/",
       {{"Param1", "value1"}},
       {},
       "",
       "Param1=value1",
       "/",
       hd,
       sh,
       "1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab",
       "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
      {"get-vanilla-query-order-key",
       "GET",
       "/",
       {{"Param1", "value2"}, {"Param1", "Value1"}},
       {},
       "",
       "Param1=Value1&Param1=value2",
       "/",
       hd,
       sh,
       "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
       "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"},
      {"get-vanilla-query-order-key-case",
       "GET",
       "/",
       {{"Param2", "value2"}, {"Param1", "value1"}},
       {},
       "",
       "Param1=value1&Param2=value2",
       "/",
       hd,
       sh,
       "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
       "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
      {"get-vanilla-query-order-value",
       "GET",
       "/",
       {{"Param1", "value2"}, {"Param1", "value1"}},
       {},
       "",
       "Param1=value1&Param1=value2",
       "/",
       hd,
       sh,
       "c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606",
       "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"},
      {"get-vanilla-query-unreserved",
       "GET",
       "/",
       {{unreserved, unreserved}},
       {},
       "",
       unreserved + "=" + unreserved,
       "/",
       hd,
       sh,
       "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
       "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
      {"get-vanilla-utf8-query",
       "GET",
       "/",
       {{"\xE1\x88\xB4", "bar"}},
       {},
       "",
       "%E1%88%B4=bar",
       "/",
       hd,
       sh,
       "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
       "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
      {"get-unreserved",
       "GET",
       "/" + unreserved,
       {},
       {},
       "",
       "",
       "/" + unreserved,
       hd,
       sh,
       "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
       "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
      {"get-utf8",
       "GET",
       "/\xE1\x88\xB4",
       {},
       {},
       "",
       "",
       "/%E1%88%B4",
       hd,
       sh,
       "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
       "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
      {"get-space (normalize-path)",
       "GET",
       "/example space/",
       {},
       {},
       "",
       "",
       "/example%20space/",
       hd,
       sh,
       "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
       "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
      {"get-slash (normalize-path)",
       "GET",
       "//",
       {},
       {},
       "",
       "",
       "/",
       hd,
       sh,
       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-slashes (normalize-path)",
       "GET",
       "//example//",
       {},
       {},
       "",
       "",
       "/example/",
       hd,
       sh,
       "cb96b4ac96d501f7c5c15bc6d67b3035061cfced4af6585ad927f7e6c985c015",
       "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"},
      {"get-slash-dot-slash (normalize-path)",
       "GET",
       "/./",
       {},
       {},
       "",
       "",
       "/",
       hd,
       sh,
       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-slash-pointless-dot (normalize-path)",
       "GET",
       "/./example",
       {},
       {},
       "",
       "",
       "/example",
       hd,
       sh,
       "214d50c111a8edc4819da6a636336472c916b5240f51e9a51b5c3305180cf702",
       "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5"},
      {"get-relative (normalize-path)",
       "GET",
       "/example/..",
       {},
       {},
       "",
       "",
       "/",
       hd,
       sh,
       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-relative-relative (normalize-path)",
       "GET",
       "/example1/example2/../..",
       {},
       {},
       "",
       "",
       "/",
       hd,
       sh,
       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-header-key-duplicate",
       "GET",
       "/",
       {},
       {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}},
       "",
       "",
       "/",
       "host:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n",
       "host;my-header1;x-amz-date",
       "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
       "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
      {"get-header-value-order",
       "GET",
       "/",
       {},
       {{"My-Header1", "value4"},
        {"My-Header1", "value1"},
        {"My-Header1", "value3"},
        {"My-Header1", "value2"}},
       "",
       "",
       "/",
       "host:example.amazonaws.com\nmy-header1:value4,value1,value3,value2\n"
       "x-amz-date:20150830T123600Z\n",
       "host;my-header1;x-amz-date",
       "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
       "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
      {"get-header-value-trim",
       "GET",
       "/",
       {},
       {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}},
       "",
       "",
       "/",
       "host:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n"
       "x-amz-date:20150830T123600Z\n",
       "host;my-header1;my-header2;x-amz-date",
       "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
       "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
      {"post-vanilla",
       "POST",
       "/",
       {},
       {},
       "",
       "",
       "/",
       hd,
       sh,
       "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
       "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
      {"post-vanilla-query",
       "POST",
       "/",
       {{"Param1", "value1"}},
       {},
       "",
       "Param1=value1",
       "/",
       hd,
       sh,
       "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
       "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
      {"post-header-key-sort",
       "POST",
       "/",
       {},
       {{"My-Header1", "value1"}},
       "",
       "",
       "/",
       "host:example.amazonaws.com\nmy-header1:value1\nx-amz-date:20150830T123600Z\n",
       "host;my-header1;x-amz-date",
       "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
       "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
      {"post-header-value-case",
       "POST",
       "/",
       {},
       {{"My-Header1", "VALUE1"}},
       "",
       "",
       "/",
       "host:example.amazonaws.com\nmy-header1:VALUE1\nx-amz-date:20150830T123600Z\n",
       "host;my-header1;x-amz-date",
       "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93",
       "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
      {"post-x-www-form-urlencoded",
       "POST",
       "/",
       {},
       {{"Content-Type", "application/x-www-form-urlencoded"}},
       "Param1=value1",
       "",
       "/",
       "content-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n"
       "x-amz-date:20150830T123600Z\n",
       "content-type;host;x-amz-date",
       "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
       "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
      {"post-x-www-form-urlencoded-parameters",
       "POST",
       "/",
       {},
       {{"Content-Type", "application/x-www-form-urlencoded; charset=utf8"}},
       "Param1=value1",
       "",
       "/",
       "content-type:application/x-www-form-urlencoded; charset=utf8\n"
       "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n",
       "content-type;host;x-amz-date",
       "2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c",
       "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"},
      {"post-sts-header-before",
       "POST",
       "/",
       {},
       {{"X-Amz-Security-Token",
         "AQoDYXdzEPT//////////"
         "wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUu"
         "wthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp7"
         "5YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+"
         "scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="}},
       "",
       "",
       "/",
       "",
       "host;x-amz-date;x-amz-security-token",
       "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
       "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
  };
}

class SigV4SuiteTest : public ::testing::TestWithParam<SuiteCase> {};

TEST_P(SigV4SuiteTest, MatchesThePublishedCanonicalRequestStringToSignAndAuthorization) {
  const SuiteCase& c = GetParam();
  sigv4::Request req;
  req.method = c.method;
  req.canonical_uri = sigv4::CanonicalUri(c.path, /*normalize=*/true);
  req.query = c.query;
  req.headers = {{"Host", std::string(kSuiteHost)}, {"X-Amz-Date", std::string(kSuiteDate)}};
  req.headers.insert(req.headers.end(), c.headers.begin(), c.headers.end());
  req.payload_hash = sigv4::Sha256Hex(AsBytes(c.body));
  sigv4::Signed s =
      sigv4::Sign(req, kSuiteAccessKey, kSuiteSecret, "us-east-1", "service", kSuiteDate);

  EXPECT_EQ(req.canonical_uri, c.canonical_uri);
  if (!c.canonical_headers.empty()) {
    std::string expected = c.method + "\n" + c.canonical_uri + "\n" + c.canonical_query + "\n" +
                           c.canonical_headers + "\n" + c.signed_headers + "\n" +
                           sigv4::Sha256Hex(AsBytes(c.body));
    EXPECT_EQ(s.canonical_request, expected);
  }
  // The published string to sign ends in the hash of the published
  // canonical request, so this checks the canonical request in every case.
  EXPECT_EQ(
      s.string_to_sign,
      "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n" + c.sts_hash);
  EXPECT_EQ(s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=" +
                c.signed_headers + ", Signature=" + c.signature);
}

INSTANTIATE_TEST_SUITE_P(AwsSigV4TestSuite, SigV4SuiteTest, ::testing::ValuesIn(SuiteCases()),
                         [](const ::testing::TestParamInfo<SuiteCase>& info) {
                           std::string n;
                           for (char ch : info.param.name) {
                             if (std::isalnum(static_cast<unsigned char>(ch))) n.push_back(ch);
                           }
                           return n;
                         });

TEST(SigV4Test, SigningKeyMatchesTheDocumentedDerivation) {
  // "Examples of how to derive a signing key for Signature Version 4".
  EXPECT_EQ(HexEncode(sigv4::SigningKey(kSuiteSecret, "20120215", "us-east-1", "iam")),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

TEST(SigV4Test, UriEncodeFollowsTheSigV4Rules) {
  EXPECT_EQ(sigv4::UriEncode("a b+c=d&e/f~g", false), "a%20b%2Bc%3Dd%26e/f~g");
  EXPECT_EQ(sigv4::UriEncode("a/b", true), "a%2Fb");
  EXPECT_EQ(sigv4::UriEncode("\xE1\x88\xB4", true), "%E1%88%B4");
  EXPECT_EQ(sigv4::UriEncode("100%", true), "100%25");
  EXPECT_EQ(sigv4::UriEncode("*'()!$,;:@", true), "%2A%27%28%29%21%24%2C%3B%3A%40");
  // S3 keys are not normalized: "a//b" and "./x" keep their meaning.
  EXPECT_EQ(sigv4::CanonicalUri("/bucket/a//b/./c", false), "/bucket/a//b/./c");
  EXPECT_EQ(sigv4::CanonicalQueryString({{"prefix", "a b/"}, {"list-type", "2"}, {"uploads", ""}}),
            "list-type=2&prefix=a%20b%2F&uploads=");
}

TEST(SigV4Test, FormatAmzDateIsUtc) {
  using std::chrono::seconds;
  std::chrono::system_clock::time_point t{seconds(1440938160)};  // 2015-08-30 12:36:00 UTC
  EXPECT_EQ(sigv4::FormatAmzDate(t), "20150830T123600Z");
}

// ------------------------------------------------------------ S3 API examples

constexpr std::string_view kS3Date = "20130524T000000Z";

S3Credentials ExampleCredentials() {
  return {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "", "test"};
}

std::string Authorization(const S3WireRequest& w) { return w.headers.back().second; }

S3RequestSpec ExampleSpec(std::string method, std::string key) {
  S3RequestSpec spec;
  spec.method = std::move(method);
  spec.host = "examplebucket.s3.amazonaws.com";
  spec.bucket = "examplebucket";
  spec.path_style = false;
  spec.key = std::move(key);
  spec.payload_hash = std::string(kEmpty);
  return spec;
}

TEST(SigV4S3ExamplesTest, GetObjectWithRange) {
  S3RequestSpec spec = ExampleSpec("GET", "test.txt");
  spec.headers = {{"Range", "bytes=0-9"}};
  S3WireRequest w = SignS3Request(spec, ExampleCredentials(), "us-east-1", kS3Date);
  EXPECT_EQ(w.canonical_request,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            "\nx-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sigv4::StringToSign(kS3Date, "20130524/us-east-1/s3/aws4_request", w.canonical_request),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(Authorization(w),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(w.target, "/test.txt");
}

TEST(SigV4S3ExamplesTest, PutObject) {
  const std::string body = "Welcome to Amazon S3.";
  S3RequestSpec spec = ExampleSpec("PUT", "test$file.text");
  spec.payload_hash = sigv4::Sha256Hex(AsBytes(body));
  EXPECT_EQ(spec.payload_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  spec.headers = {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                  {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
  S3WireRequest w = SignS3Request(spec, ExampleCredentials(), "us-east-1", kS3Date);
  EXPECT_EQ(w.canonical_request,
            "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\n"
            "host:examplebucket.s3.amazonaws.com\n"
            "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
            "\nx-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  EXPECT_EQ(sigv4::Sha256Hex(AsBytes(w.canonical_request)),
            "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
  EXPECT_EQ(Authorization(w),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
            "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
  EXPECT_EQ(w.target, "/test%24file.text");
}

TEST(SigV4S3ExamplesTest, GetBucketLifecycle) {
  S3RequestSpec spec = ExampleSpec("GET", "");
  spec.bucket_level = true;
  spec.query = {{"lifecycle", ""}};
  S3WireRequest w = SignS3Request(spec, ExampleCredentials(), "us-east-1", kS3Date);
  EXPECT_EQ(sigv4::Sha256Hex(AsBytes(w.canonical_request)),
            "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca");
  EXPECT_EQ(Authorization(w),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
            "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
  EXPECT_EQ(w.target, "/?lifecycle=");
}

TEST(SigV4S3ExamplesTest, ListObjects) {
  S3RequestSpec spec = ExampleSpec("GET", "");
  spec.bucket_level = true;
  spec.query = {{"prefix", "J"}, {"max-keys", "2"}};  // out of order on purpose
  S3WireRequest w = SignS3Request(spec, ExampleCredentials(), "us-east-1", kS3Date);
  EXPECT_EQ(sigv4::Sha256Hex(AsBytes(w.canonical_request)),
            "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7");
  EXPECT_EQ(Authorization(w),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
            "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
  EXPECT_EQ(w.target, "/?max-keys=2&prefix=J");
}

// ------------------------------------------------------------ botocore

struct BotoCase {
  std::string name;
  S3RequestSpec spec;
  bool tls = false;
  std::string body;
  bool unsigned_payload = false;
  std::string region = "us-east-1";
  S3Credentials credentials = {"S3RVER", "S3RVER", "", "test"};
};

std::vector<BotoCase> BotoCases() {
  auto path_style = [](std::string name, std::string method, std::string key) {
    BotoCase c;
    c.name = std::move(name);
    c.spec.method = std::move(method);
    c.spec.host = "127.0.0.1:9000";
    c.spec.bucket = "bunker-test";
    c.spec.path_style = true;
    c.spec.key = std::move(key);
    return c;
  };
  std::vector<BotoCase> cases;
  cases.push_back(path_style("get config", "GET", "repo/config"));
  {
    BotoCase c = path_style("put pack", "PUT", "repo/data/3f/3f2a9b");
    c.body = std::string(5000, 'x') + "\x01\x02\xff";
    cases.push_back(c);
  }
  {
    BotoCase c = path_style("put key with spaces", "PUT", "repo/dir with spaces/file name.bin");
    c.body = "hello";
    cases.push_back(c);
  }
  cases.push_back(path_style("get unicode key", "GET",
                             "repo/\xC3\xBCn\xC3\xAF\x63\xC3\xB8\x64\xC3\xA9/"
                             "\xE6\x97\xA5\xE6\x9C\xAC/\xD0\xBA\xD0\xBB\xD1\x8E\xD1\x87"));
  cases.push_back(path_style("head key with reserved characters", "HEAD",
                             "repo/a+b=c&d?e#f%g'h(i)*!$,;:@[]{}^`|\\\"<>"));
  cases.push_back(
      path_style("delete key with tilde and unreserved", "DELETE", "repo/~user/-._~0123456789"));
  {
    BotoCase c = path_style("ranged get", "GET", "repo/data/00/r");
    c.spec.headers = {{"Range", "bytes=1000-2233"}};
    cases.push_back(c);
  }
  {
    BotoCase c = path_style("list first page", "GET", "");
    c.spec.bucket_level = true;
    c.spec.query = {{"list-type", "2"}, {"prefix", "repo/data/"}, {"encoding-type", "url"}};
    cases.push_back(c);
  }
  {
    BotoCase c = path_style("list with continuation token", "GET", "");
    c.spec.bucket_level = true;
    c.spec.query = {{"list-type", "2"},
                    {"prefix", "repo/da ta+/"},
                    {"encoding-type", "url"},
                    {"continuation-token", "1/Aa+b=c/==&x"}};
    cases.push_back(c);
  }
  {
    BotoCase c = path_style("list after a unicode name", "GET", "");
    c.spec.bucket_level = true;
    c.spec.query = {
        {"list-type", "2"}, {"prefix", "repo/"}, {"start-after", "repo/\xE6\x97\xA5 x=y"}};
    cases.push_back(c);
  }
  {
    BotoCase c = path_style("create multipart upload", "POST", "repo/data/ab/big");
    c.spec.query = {{"uploads", ""}};
    cases.push_back(c);
  }
  {
    BotoCase c = path_style("upload part", "PUT", "repo/data/ab/big");
    c.spec.query = {{"partNumber", "3"}, {"uploadId", "2~abc+/=def"}};
    c.body = std::string(1 << 16, 'p');
    cases.push_back(c);
  }
  {
    BotoCase c = path_style("complete multipart upload", "POST", "repo/data/ab/big");
    c.spec.query = {{"uploadId", "2~abc+/=def"}};
    c.spec.headers = {{"Content-Type", "application/xml"}};
    c.body =
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"e\"</ETag></Part>"
        "</CompleteMultipartUpload>";
    cases.push_back(c);
  }
  {
    BotoCase c = path_style("session token", "GET", "repo/keys/k1");
    c.credentials.session_token = "FwoGZXIvYXdzEBYaDH+token/with=chars";
    cases.push_back(c);
  }
  {
    BotoCase c;
    c.name = "virtual-hosted over https in eu-west-1";
    c.spec.method = "PUT";
    c.spec.host = "bunker-prod.s3.eu-west-1.amazonaws.com";
    c.spec.bucket = "bunker-prod";
    c.spec.path_style = false;
    c.spec.key = "cluster a/snapshots/2024-01-01T00:00:00Z";
    c.tls = true;
    c.region = "eu-west-1";
    c.body = "snapshot";
    c.credentials = {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "", ""};
    cases.push_back(c);
  }
  {
    BotoCase c;
    c.name = "unsigned payload over https";
    c.spec.method = "PUT";
    c.spec.host = "minio.corp:9000";
    c.spec.bucket = "backups";
    c.spec.path_style = true;
    c.spec.key = "repo/data/00/pack";
    c.tls = true;
    c.unsigned_payload = true;
    c.body = "pack bytes";
    c.spec.headers = {{"Content-MD5", "u5Yp1fOKV1vQ9+4t7Kz6xA=="}};
    cases.push_back(c);
  }
  for (BotoCase& c : cases) {
    c.spec.payload_hash = c.unsigned_payload ? std::string(sigv4::kUnsignedPayload)
                                             : sigv4::Sha256Hex(AsBytes(c.body));
  }
  return cases;
}

// python3 from PATH, or /usr/bin/python3 (Debian's, with python3-botocore)
// when the first cannot import botocore.
Result<nlohmann::json> RunBotocore(const nlohmann::json& input) {
  const std::string script =
      std::string(BUNKER_SOURCE_DIR) + "/tests/unit/backend/botocore_sigv4.py";
  std::string last;
  for (const char* python : {"python3", "/usr/bin/python3"}) {
    testing::RunOptions options;
    options.stdin_data = input.dump();
    options.timeout = std::chrono::seconds(60);
    Result<testing::RunResult> run = testing::RunCommand({python, script}, options);
    if (!run.ok()) {
      last = run.status().ToString();
      continue;
    }
    if (!run->ok()) {
      last = run->Describe();
      continue;
    }
    nlohmann::json parsed = nlohmann::json::parse(run->out, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) return FailedPrecondition("botocore_sigv4.py printed: " + run->out);
    return parsed;
  }
  return FailedPrecondition("cannot run " + script + " with botocore: " + last);
}

TEST(SigV4BotocoreTest, EveryAuthorizationHeaderMatchesBotocoresS3SigV4Auth) {
  constexpr std::string_view kDate = "20240229T235959Z";
  std::vector<BotoCase> cases = BotoCases();
  nlohmann::json requests = nlohmann::json::array();
  for (const BotoCase& c : cases) {
    requests.push_back({{"name", c.name},
                        {"access_key", c.credentials.access_key_id},
                        {"secret_key", c.credentials.secret_access_key},
                        {"session_token", c.credentials.session_token},
                        {"region", c.region},
                        {"method", c.spec.method},
                        {"scheme", c.tls ? "https" : "http"},
                        {"host", c.spec.host},
                        {"bucket", c.spec.bucket},
                        {"path_style", c.spec.path_style},
                        {"key", c.spec.key},
                        {"bucket_level", c.spec.bucket_level},
                        {"params", c.spec.query},
                        {"headers", c.spec.headers},
                        {"body_hex", HexEncode(AsBytes(c.body))},
                        {"unsigned_payload", c.unsigned_payload}});
  }
  Result<nlohmann::json> out =
      RunBotocore({{"amz_date", std::string(kDate)}, {"requests", requests}});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const nlohmann::json& results = (*out)["results"];
  ASSERT_EQ(results.size(), cases.size());
  std::string version = (*out)["botocore_version"].get<std::string>();
  for (size_t i = 0; i < cases.size(); ++i) {
    const BotoCase& c = cases[i];
    const nlohmann::json& r = results[i];
    S3WireRequest ours = SignS3Request(c.spec, c.credentials, c.region, kDate);
    EXPECT_EQ(Authorization(ours), r["authorization"].get<std::string>())
        << c.name << " (botocore " << version << ")\nours:\n"
        << ours.canonical_request << "\nbotocore:\n"
        << r["canonical_request"].get<std::string>();
    EXPECT_EQ(c.spec.payload_hash, r["content_sha256"].get<std::string>()) << c.name;
    // The path we send is the one botocore signs and sends.
    std::string url = r["url"].get<std::string>();
    std::string path = url.substr(url.find('/', url.find("//") + 2));
    EXPECT_EQ(ours.target.substr(0, ours.target.find('?')), path) << c.name;
  }
  std::cout << "[botocore] " << cases.size() << " S3 requests signed identically by botocore "
            << version << "\n";
}

}  // namespace
}  // namespace bunker::backend

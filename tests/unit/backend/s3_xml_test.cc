// S3 XML documents: the responses real servers send (AWS, MinIO, s3rver
// shapes) and hostile input: truncation at every byte, garbage, nesting
// bombs, entity tricks, huge documents. Nothing may crash, hang or allocate
// without bound; every failure is a clear Corruption.

#include "nodeagent/core/backend/s3_xml.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace bunker::backend::s3xml {
namespace {

constexpr std::string_view kListPage = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bunker-test</Name>
  <Prefix>repo/data/</Prefix>
  <KeyCount>2</KeyCount>
  <MaxKeys>1000</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents>
    <Key>repo/data/3f/3f2a</Key>
    <LastModified>2009-10-12T17:50:30.000Z</LastModified>
    <ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag>
    <Size>434234</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents>
    <Key>repo/data/a &amp; b &lt;c&gt; &#x65E5;&#26412;</Key>
    <LastModified>2024-02-29T23:59:59Z</LastModified>
    <Size>0</Size>
  </Contents>
</ListBucketResult>)";

TEST(S3XmlTest, ParsesAListObjectsV2Page) {
  Result<ListObjectsV2Page> page = ParseListObjectsV2(kListPage);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_TRUE(page->is_truncated);
  EXPECT_EQ(page->next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "repo/data/3f/3f2a");
  EXPECT_EQ(page->objects[0].size, 434234u);
  EXPECT_EQ(page->objects[0].mtime_unix, 1255369830);
  EXPECT_EQ(page->objects[1].key, "repo/data/a & b <c> \xE6\x97\xA5\xE6\x9C\xAC");
  EXPECT_EQ(page->objects[1].size, 0u);
  EXPECT_EQ(page->objects[1].mtime_unix, 1709251199);
}

TEST(S3XmlTest, DecodesUrlEncodedKeysOnlyWhenTheServerSaysSo) {
  std::string doc =
      "<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>"
      "<Contents><Key>repo/a+b%2Bc%3D%E6%97%A5</Key><Size>1</Size></Contents></ListBucketResult>";
  Result<ListObjectsV2Page> page = ParseListObjectsV2(doc);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->objects[0].key, "repo/a b+c=\xE6\x97\xA5");
  // s3rver ignores encoding-type: keys arrive raw and must stay raw.
  std::string raw =
      "<ListBucketResult><IsTruncated>false</IsTruncated>"
      "<Contents><Key>repo/a+b%2B</Key><Size>1</Size></Contents></ListBucketResult>";
  page = ParseListObjectsV2(raw);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->objects[0].key, "repo/a+b%2B");
  EXPECT_FALSE(UrlDecodeKey("bad%4").ok());
  EXPECT_FALSE(UrlDecodeKey("bad%zz").ok());
}

TEST(S3XmlTest, AnEmptyListingIsOk) {
  Result<ListObjectsV2Page> page = ParseListObjectsV2(
      "<ListBucketResult><Name>b</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated>"
      "</ListBucketResult>");
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->objects.empty());
  EXPECT_FALSE(page->is_truncated);
}

TEST(S3XmlTest, ATruncatedPageWithoutATokenIsRefused) {
  Result<ListObjectsV2Page> page =
      ParseListObjectsV2("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>");
  EXPECT_EQ(page.status().code(), Code::kCorruption);
  EXPECT_NE(page.status().message().find("NextContinuationToken"), std::string::npos);
}

TEST(S3XmlTest, BadFieldsAreRefused) {
  for (const char* doc : {
           "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
           "<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>",
           "<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
           "<ListBucketResult><Contents><Key>k</Key><Size>99999999999999999999999</Size>"
           "</Contents></ListBucketResult>",
           "<ListBucketResult><Contents><Key>k</Key><Size>1</Size><LastModified>yesterday"
           "</LastModified></Contents></ListBucketResult>",
           "<ListBucketResult><IsTruncated>maybe</IsTruncated></ListBucketResult>",
           "<Error><Code>NoSuchBucket</Code></Error>",
       }) {
    Result<ListObjectsV2Page> page = ParseListObjectsV2(doc);
    EXPECT_EQ(page.status().code(), Code::kCorruption) << doc;
  }
}

TEST(S3XmlTest, ParsesErrorBodies) {
  Result<ErrorInfo> e = ParseError(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code>"
      "<Message>The request signature we calculated does not match the signature you provided."
      "</Message><AWSAccessKeyId>AKIA</AWSAccessKeyId><StringToSign>…</StringToSign>"
      "<RequestId>4442587FB7D0A2F9</RequestId></Error>");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->code, "SignatureDoesNotMatch");
  EXPECT_EQ(e->message,
            "The request signature we calculated does not match the signature you provided.");
  EXPECT_EQ(e->request_id, "4442587FB7D0A2F9");
  Result<ErrorInfo> region = ParseError(
      "<Error><Code>AuthorizationHeaderMalformed</Code><Message>m</Message>"
      "<Region>eu-west-1</Region></Error>");
  ASSERT_TRUE(region.ok());
  EXPECT_EQ(region->region, "eu-west-1");
  EXPECT_FALSE(ParseError("<Error><Message>no code</Message></Error>").ok());
  EXPECT_FALSE(ParseError("<html><body>502 Bad Gateway</body></html>").ok());
}

TEST(S3XmlTest, ErrorMessagesAreBounded) {
  std::string doc =
      "<Error><Code>X</Code><Message>" + std::string(100000, 'm') + "</Message></Error>";
  Result<ErrorInfo> e = ParseError(doc);
  ASSERT_TRUE(e.ok());
  EXPECT_LE(e->message.size(), 1100u);
}

TEST(S3XmlTest, ParsesMultipartDocuments) {
  Result<std::string> id = ParseInitiateMultipartUpload(
      "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Bucket>b</Bucket><Key>k</Key><UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIH"
      "VwbG9hZA</UploadId></InitiateMultipartUploadResult>");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA");
  EXPECT_FALSE(ParseInitiateMultipartUpload("<InitiateMultipartUploadResult/>").ok());

  Result<CompleteMultipartOutcome> done = ParseCompleteMultipartUpload(
      "<CompleteMultipartUploadResult><Location>http://x/b/k</Location><Bucket>b</Bucket>"
      "<Key>k</Key><ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag>"
      "</CompleteMultipartUploadResult>");
  ASSERT_TRUE(done.ok());
  EXPECT_FALSE(done->error.has_value());
  EXPECT_EQ(done->etag, "\"3858f62230ac3c915f300c664312c11f-9\"");
  // A 200 response can still carry an error.
  Result<CompleteMultipartOutcome> failed = ParseCompleteMultipartUpload(
      "<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try "
      "again.</Message></Error>");
  ASSERT_TRUE(failed.ok());
  ASSERT_TRUE(failed->error.has_value());
  EXPECT_EQ(failed->error->code, "InternalError");
}

TEST(S3XmlTest, ParsesDeleteObjectsResults) {
  Result<DeleteObjectsResult> r = ParseDeleteObjectsResult(
      "<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Deleted><Key>a</Key></Deleted><Deleted><Key>b c</Key><VersionId>v</VersionId></Deleted>"
      "<Error><Key>d</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
      "</DeleteResult>");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->deleted, (std::vector<std::string>{"a", "b c"}));
  ASSERT_EQ(r->errors.size(), 1u);
  EXPECT_EQ(r->errors[0].key, "d");
  EXPECT_EQ(r->errors[0].code, "AccessDenied");
  EXPECT_FALSE(ParseDeleteObjectsResult("<DeleteResult><Deleted/></DeleteResult>").ok());
}

TEST(S3XmlTest, BuildsRequestBodiesThatParseBack) {
  std::string complete = BuildCompleteMultipartUpload({{1, "\"a&b\""}, {2, "\"c\""}});
  Result<XmlElement> root = ParseXml(complete);
  ASSERT_TRUE(root.ok());
  ASSERT_EQ(root->children.size(), 2u);
  EXPECT_EQ(root->children[0].ChildText("ETag"), "\"a&b\"");
  EXPECT_EQ(root->children[1].ChildText("PartNumber"), "2");

  std::string del = BuildDeleteObjects({"k<1>", "k'2\""}, /*quiet=*/true);
  root = ParseXml(del);
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->ChildText("Quiet"), "true");
  EXPECT_EQ(root->children[1].ChildText("Key"), "k<1>");
  EXPECT_EQ(root->children[2].ChildText("Key"), "k'2\"");
}

TEST(S3XmlTest, HandlesCdataCommentsAndProcessingInstructions) {
  Result<XmlElement> root = ParseXml(
      "\xEF\xBB\xBF<?xml version='1.0'?><!-- c --><a x='1' y=\"2\"><b><![CDATA[<raw> & ]]>"
      "</b><!-- inside --><?pi x?><c/></a>\n<!-- after -->\n");
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  EXPECT_EQ(root->name, "a");
  EXPECT_EQ(root->ChildText("b"), "<raw> & ");
  EXPECT_NE(root->Child("c"), nullptr);
  // Namespace prefixes are ignored.
  root = ParseXml("<s3:Error xmlns:s3='x'><s3:Code>C</s3:Code></s3:Error>");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->name, "Error");
  EXPECT_EQ(root->ChildText("Code"), "C");
}

TEST(S3XmlTest, GarbageIsAClearCorruption) {
  for (const char* doc : {
           "",
           "   ",
           "not xml at all",
           "<",
           "<>",
           "<a>",
           "<a></b>",
           "<a><b></a></b>",
           "<a>&unknown;</a>",
           "<a>&#0;</a>",
           "<a>&#xD800;</a>",
           "<a>&#x110000;</a>",
           "<a>&#xZZ;</a>",
           "<a>&amp</a>",
           "<a x=1></a>",
           "<a x='1></a>",
           "<a x='<'></a>",
           "<ax='1'></a>",
           "<a/><b/>",
           "<a></a>trailing",
           "text<a/>",
           "<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>",
           "<a><!DOCTYPE b></a>",
           "<a><![CDATA[never closed</a>",
           "<a><!-- never closed</a>",
           "<1a/>",
       }) {
    Result<XmlElement> root = ParseXml(doc);
    EXPECT_EQ(root.status().code(), Code::kCorruption) << "accepted: " << doc;
    EXPECT_NE(root.status().message().find("XML"), std::string::npos) << doc;
  }
}

TEST(S3XmlTest, EveryTruncationOfARealDocumentFailsCleanly) {
  std::string doc(kListPage);
  for (size_t n = 0; n < doc.size(); ++n) {
    Result<ListObjectsV2Page> page = ParseListObjectsV2(std::string_view(doc).substr(0, n));
    // Some prefixes end right after the root's closing tag minus nothing,
    // but none before the whole document is there.
    EXPECT_FALSE(page.ok()) << "accepted a document truncated to " << n << " bytes";
  }
}

TEST(S3XmlTest, NestingAndSizeBombsAreBounded) {
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "<a>";
  Result<XmlElement> root = ParseXml(deep);
  EXPECT_EQ(root.status().code(), Code::kCorruption);
  EXPECT_NE(root.status().message().find("deeper"), std::string::npos);

  std::string wide = "<a>";
  for (size_t i = 0; i < kMaxElements + 10; ++i) wide += "<b/>";
  wide += "</a>";
  root = ParseXml(wide);
  EXPECT_EQ(root.status().code(), Code::kCorruption);
  EXPECT_NE(root.status().message().find("elements"), std::string::npos);

  std::string huge(kMaxDocumentBytes + 1, ' ');
  root = ParseXml(huge);
  EXPECT_EQ(root.status().code(), Code::kCorruption);
  EXPECT_NE(root.status().message().find("exceeds"), std::string::npos);
}

TEST(S3XmlTest, RandomMutationsNeverCrash) {
  std::mt19937 rng(42);
  std::string base(kListPage);
  static const char kAlphabet[] = "<>/&;#x='\"![]?-CDATA \n\0\xff";
  const std::string alphabet(kAlphabet, sizeof(kAlphabet) - 1);
  for (int i = 0; i < 20000; ++i) {
    std::string doc = base;
    int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits && !doc.empty(); ++e) {
      size_t pos = rng() % doc.size();
      switch (rng() % 3) {
        case 0:
          doc[pos] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          doc.erase(pos, 1 + rng() % 16);
          break;
        default:
          doc.insert(pos, 1, alphabet[rng() % alphabet.size()]);
      }
    }
    Result<ListObjectsV2Page> page = ParseListObjectsV2(doc);
    if (!page.ok()) {
      EXPECT_EQ(page.status().code(), Code::kCorruption);
    }
  }
}

TEST(S3XmlTest, ParsesIso8601Timestamps) {
  EXPECT_EQ(*ParseIso8601("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(*ParseIso8601("2009-10-12T17:50:30.000Z"), 1255369830);
  EXPECT_EQ(*ParseIso8601("2009-10-12T17:50:30+00:00"), 1255369830);
  EXPECT_EQ(*ParseIso8601("2009-10-12T17:50:30.123456789Z"), 1255369830);
  for (const char* bad : {"", "2009-10-12", "2009-13-12T17:50:30Z", "2009-10-12T17:50:30+02:00",
                          "2009-10-12T17:50:30.Z", "20091012T175030Z"}) {
    EXPECT_FALSE(ParseIso8601(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace bunker::backend::s3xml

// ParseKubeconfig: the kubeconfig a user pastes into the appliance's API
// (appliance/kube/kubeconfig.h), parsed with yaml-cpp.
//
// Input: context ‖ NUL ‖ kubeconfig YAML when the input holds a NUL byte
// (the context asked for); otherwise the whole input is the YAML and the
// context is empty (current-context).
//
// Properties: no exception escapes (yaml-cpp throws; the parser must catch);
// rejections are InvalidArgument; an accepted kubeconfig names a context (the
// one asked for, when one was), a server "https://<something>" without a
// trailing '/', and either a token, or a client certificate with its key, or
// no credentials at all.

#include <string>
#include <string_view>

#include "appliance/kube/kubeconfig.h"
#include "tests/fuzz/fuzz_target.h"

namespace bunker::fuzz {

BUNKER_FUZZ_TARGET(kubeconfig) {
  std::string_view text = AsChars(data);
  std::string_view context;
  if (size_t nul = text.find('\0'); nul != std::string_view::npos) {
    context = text.substr(0, nul);
    text = text.substr(nul + 1);
  }
  Result<kube::KubeConfig> r = kube::ParseKubeconfig(text, context);
  if (!r.ok()) {
    FUZZ_CHECK(r.status().code() == Code::kInvalidArgument, Describe(r.status()));
    return false;
  }
  const kube::KubeConfig& kc = *r;
  FUZZ_CHECK(!kc.context.empty(), "accepted without a context");
  FUZZ_CHECK(context.empty() || kc.context == context, "asked for context " +
                                                           std::string(context.substr(0, 40)) +
                                                           ", got " + kc.context.substr(0, 40));
  FUZZ_CHECK(kc.server.starts_with("https://") && kc.server.size() > 8,
             "server is not an https:// URL with a host: " + kc.server.substr(0, 80));
  FUZZ_CHECK(kc.server.back() != '/', "server ends with '/': " + kc.server.substr(0, 80));
  FUZZ_CHECK(kc.client_cert_pem.empty() == kc.client_key_pem.empty(),
             "client certificate without key, or key without certificate");
  return true;
}

}  // namespace bunker::fuzz

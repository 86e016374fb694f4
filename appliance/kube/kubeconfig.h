#pragma once

// Kubeconfig: what the appliance needs from a kubeconfig file to talk to one
// cluster's API server — its URL, the CA to trust, and the credentials
// (bearer token, or client certificate and key). Parsed with yaml-cpp.
//
// Only self-contained kubeconfigs are accepted: the *-data fields carry the
// PEM (base64), file references (certificate-authority, client-certificate,
// client-key, tokenFile) and exec/auth-provider plugins are refused, since
// the appliance keeps the cluster in its own datastore and runs nothing.
// insecure-skip-tls-verify is honoured only when the kubeconfig sets it.
// Thread-safety: pure functions.

#include <string>
#include <string_view>

#include "nodeagent/core/util/status.h"

namespace bunker::kube {

struct KubeConfig {
  std::string context;  // the context used
  std::string server;   // "https://host:port[/prefix]", no trailing '/'
  std::string ca_pem;   // trusted CA certificates; empty: the system store
  bool insecure_skip_tls_verify = false;
  // Credentials: a bearer token, or a client certificate and key (PEM), or
  // neither (anonymous). Secrets: never logged, stored sealed.
  std::string token;
  std::string client_cert_pem;
  std::string client_key_pem;
};

// Parses `yaml` and resolves `context` (empty: current-context; when that is
// unset too and there is exactly one context, that one). InvalidArgument
// naming the offending kubeconfig field ("contexts[name=prod].context.cluster:
// no cluster named \"x\"") otherwise.
Result<KubeConfig> ParseKubeconfig(std::string_view yaml, std::string_view context = "");

}  // namespace bunker::kube

#include "appliance/kube/kubeconfig.h"

#include <yaml-cpp/yaml.h>

#include "nodeagent/core/util/bytes.h"

namespace bunker::kube {
namespace {

// Thrown inside parsing, converted to InvalidArgument at the boundary.
struct FieldError {
  std::string field;
  std::string message;
};

[[noreturn]] void Bad(std::string field, std::string message) {
  throw FieldError{std::move(field), std::move(message)};
}

std::string Scalar(const YAML::Node& node, const std::string& key, const std::string& where,
                   bool required) {
  YAML::Node v = node[key];
  if (!v || v.IsNull()) {
    if (required) {
      Bad(where + "." + key, "missing");
    }
    return "";
  }
  if (!v.IsScalar()) {
    Bad(where + "." + key, "must be a string");
  }
  return v.as<std::string>();
}

std::string Pem(const YAML::Node& node, const std::string& key, const std::string& where) {
  std::string b64 = Scalar(node, key, where, false);
  if (b64.empty()) {
    return "";
  }
  Result<Bytes> pem = Base64Decode(b64);
  if (!pem.ok()) {
    Bad(where + "." + key, "is not valid base64");
  }
  std::string out(pem->begin(), pem->end());
  if (out.find("-----BEGIN ") == std::string::npos) {
    Bad(where + "." + key, "does not hold PEM data");
  }
  return out;
}

// The entry named `name` of the list at `root[list]`, and its `inner` map.
YAML::Node Named(const YAML::Node& root, const std::string& list, const std::string& name,
                 const std::string& inner, const std::string& referrer) {
  YAML::Node entries = root[list];
  if (entries && !entries.IsSequence()) {
    Bad(list, "must be a list");
  }
  if (entries) {
    for (const YAML::Node& e : entries) {
      if (e.IsMap() && e["name"] && e["name"].IsScalar() && e["name"].as<std::string>() == name) {
        YAML::Node v = e[inner];
        if (!v || !v.IsMap()) {
          Bad(list + "[name=" + name + "]." + inner, "missing or not a map");
        }
        return v;
      }
    }
  }
  Bad(referrer, "no entry named \"" + name + "\" in " + list);
}

KubeConfig Parse(std::string_view text, std::string_view wanted) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    Bad("kubeconfig", std::string("is not valid YAML: ") + e.what());
  }
  if (!root.IsMap()) {
    Bad("kubeconfig", "must be a YAML map (a kubeconfig file)");
  }
  KubeConfig kc;
  kc.context = std::string(wanted);
  if (kc.context.empty()) {
    kc.context = Scalar(root, "current-context", "kubeconfig", false);
  }
  if (kc.context.empty()) {
    YAML::Node contexts = root["contexts"];
    if (contexts && contexts.IsSequence() && contexts.size() == 1 && contexts[0]["name"]) {
      kc.context = contexts[0]["name"].as<std::string>();
    } else {
      Bad("current-context", "missing; name the context to use");
    }
  }
  std::string cwhere = "contexts[name=" + kc.context + "].context";
  YAML::Node ctx = Named(root, "contexts", kc.context, "context",
                         wanted.empty() ? "current-context" : "context");
  std::string cluster_name = Scalar(ctx, "cluster", cwhere, true);
  std::string user_name = Scalar(ctx, "user", cwhere, false);

  std::string where = "clusters[name=" + cluster_name + "].cluster";
  YAML::Node cluster = Named(root, "clusters", cluster_name, "cluster", cwhere + ".cluster");
  kc.server = Scalar(cluster, "server", where, true);
  // Trailing '/' go first: "https:///" has no host left after them.
  while (!kc.server.empty() && kc.server.back() == '/') {
    kc.server.pop_back();
  }
  if (kc.server.rfind("https://", 0) != 0 || kc.server.size() <= 8) {
    Bad(where + ".server", "must be an https:// URL");
  }
  if (cluster["certificate-authority"]) {
    Bad(where + ".certificate-authority",
        "file references are not supported; use certificate-authority-data");
  }
  kc.ca_pem = Pem(cluster, "certificate-authority-data", where);
  if (YAML::Node skip = cluster["insecure-skip-tls-verify"]; skip && !skip.IsNull()) {
    try {
      kc.insecure_skip_tls_verify = skip.as<bool>();
    } catch (const YAML::Exception&) {
      Bad(where + ".insecure-skip-tls-verify", "must be true or false");
    }
  }

  if (!user_name.empty()) {
    std::string uwhere = "users[name=" + user_name + "].user";
    YAML::Node user = Named(root, "users", user_name, "user", cwhere + ".user");
    for (const char* unsupported :
         {"client-certificate", "client-key", "tokenFile", "exec", "auth-provider"}) {
      if (user[unsupported]) {
        Bad(uwhere + "." + unsupported,
            "is not supported; use token or client-certificate-data/client-key-data");
      }
    }
    kc.token = Scalar(user, "token", uwhere, false);
    kc.client_cert_pem = Pem(user, "client-certificate-data", uwhere);
    kc.client_key_pem = Pem(user, "client-key-data", uwhere);
    if (kc.client_cert_pem.empty() != kc.client_key_pem.empty()) {
      Bad(uwhere + (kc.client_cert_pem.empty() ? ".client-certificate-data" : ".client-key-data"),
          "missing; client-certificate-data and client-key-data go together");
    }
  }
  return kc;
}

}  // namespace

Result<KubeConfig> ParseKubeconfig(std::string_view yaml, std::string_view context) {
  try {
    return Parse(yaml, context);
  } catch (const FieldError& e) {
    return InvalidArgument(e.field + ": " + e.message);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(std::string("kubeconfig: ") + e.what());
  }
}

}  // namespace bunker::kube

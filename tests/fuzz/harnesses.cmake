# The libFuzzer harnesses: tests/fuzz/<name>_fuzzer.cc, seeds in
# tests/fuzz/corpus/<name>/. Read by tests/fuzz (the fuzz build) and by
# tests/unit/fuzz_regressions (the replay in the normal build).
set(BUNKER_FUZZ_HARNESSES
  blob
  config
  content_blob
  content_list
  index
  keyfile
  lease
  location_url
  pack
  sealed
  snapshot
  trailer
  tree
)

# The S3 XML parsers join once bunker_backend builds them.
get_target_property(bunker_backend_sources bunker_backend SOURCES)
if("s3_xml.cc" IN_LIST bunker_backend_sources)
  list(APPEND BUNKER_FUZZ_HARNESSES s3_xml)
endif()

# The appliance's parsers of user input: the REST API's request handling
# (ApiHandler with a SQLite store in a temp dir) and the kubeconfig parser.
if(TARGET bunker_appliance_api AND TARGET bunker_appliance_kube)
  list(APPEND BUNKER_FUZZ_HARNESSES api_request kubeconfig)
endif()

# Libraries per harness (default: bunker_mover, which brings every decoder).
set(BUNKER_FUZZ_LIBS_api_request bunker_appliance_api nlohmann_json::nlohmann_json spdlog::spdlog)
set(BUNKER_FUZZ_LIBS_kubeconfig bunker_appliance_kube)

# bunker_fuzz_harness_libs(<harness> <out-var>): the libraries <harness> links.
function(bunker_fuzz_harness_libs harness out)
  if(DEFINED BUNKER_FUZZ_LIBS_${harness})
    set(${out} ${BUNKER_FUZZ_LIBS_${harness}} PARENT_SCOPE)
  else()
    set(${out} bunker_mover PARENT_SCOPE)
  endif()
endfunction()

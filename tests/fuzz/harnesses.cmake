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

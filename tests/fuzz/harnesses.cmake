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
  s3_xml
  sealed
  snapshot
  trailer
  tree
)

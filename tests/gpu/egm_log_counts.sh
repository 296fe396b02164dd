# shellcheck shell=bash
# Helpers that read libegm.so logs; sourced by run_coverage.sh and run_soak.sh.

# print_api_counts FILE...: one line per api: how many map and unmap events.
print_api_counts() {
  awk '{
      event = ""; api = ""
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^event=/) event = substr($i, 7)
        else if ($i ~ /^api=/) api = substr($i, 5)
      }
      if ((event == "map" || event == "unmap") && api != "") { count[api, event]++; seen[api] = 1 }
    }
    END { for (api in seen) printf "  api=%s map=%d unmap=%d\n", api, count[api, "map"], count[api, "unmap"] }' \
    "$@" | sort
}

# count_event EVENT FILE...: lines of that event over all files.
count_event() {
  local event=$1
  shift
  cat "$@" | grep -cE " event=$event( |\$)"
}

# count_api_maps API FILE...: map lines of that api.
count_api_maps() {
  local api=$1
  shift
  cat "$@" | grep -E " event=map( |\$)" | grep -cE " api=$api( |\$)"
}

# print_notable_lines FILE...: summaries, fallbacks and errors, at most 20.
print_notable_lines() {
  cat "$@" | grep -hE ' event=(summary|node-summary|device-summary|fallback|config-error|free-error|notice) ' |
    head -n 20 | sed 's/^/  /'
}

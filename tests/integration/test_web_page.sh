#!/usr/bin/env bash
# The web page at / driven in headless Chromium with a real upload (Debian's chromium and
# chromium-driver; scripts/setup.sh --tests installs them). Exit 77 (CTest skip) without chromium.
# usage: test_web_page.sh FSWAP_BINARY MEDIA_DIR
set -euo pipefail
fswap=$1
media=$2
here=$(cd "$(dirname "$0")" && pwd)

if [[ ! -x /usr/bin/chromium ]]; then
  echo "test_web_page: /usr/bin/chromium is missing (scripts/setup.sh --tests installs it); skipped"
  exit 77
fi
[[ -x /usr/bin/chromedriver ]] || { echo "test_web_page: /usr/bin/chromedriver is missing (package chromium-driver)" >&2; exit 1; }

scratch=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT

token=web-page-test-token
"$fswap" serve --host 127.0.0.1 --port 0 --data-dir "$scratch/data" --threads 2 --token "$token" >"$scratch/serve.log" 2>&1 &
server_pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's|.*serving on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$scratch/serve.log")
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n $port ]] || { echo "test_web_page: fswap serve did not start" >&2; cat "$scratch/serve.log" >&2; exit 1; }

# A headless load of the page on its own (the flags this machine needs), as a smoke check.
/usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$scratch/profile" --dump-dom "http://127.0.0.1:$port/" 2>/dev/null >"$scratch/dom.html"
grep -q 'id="job-form"' "$scratch/dom.html" || { echo "test_web_page: the page did not render its form" >&2; exit 1; }

drive() {
  if ! /usr/bin/python3 "$here/web_page_driver.py" "http://127.0.0.1:$port" "$@" --token "$token"; then
    echo "--- fswap serve log" >&2; cat "$scratch/serve.log" >&2; exit 1
  fi
}

# Uploads through the page: an image, a video (10 frames), and a wrong token (the page shows
# the API's error).
job=$(drive "$media/astronaut.png" "$media/messi5.jpg")
[[ -f $scratch/data/jobs/$job/result.jpg ]] || { echo "test_web_page: job $job has no result.jpg in the data dir" >&2; exit 1; }
[[ -f $scratch/data/jobs/$job/preview.png ]] || { echo "test_web_page: job $job's preview was not made" >&2; exit 1; }
echo "test_web_page: image job $job made through the page: done, preview shown, result downloadable"
video=$(drive "$media/astronaut.png" "$media/messi_720p.mp4" --trim 10)
[[ -f $scratch/data/jobs/$video/result.mp4 ]] || { echo "test_web_page: job $video has no result.mp4" >&2; exit 1; }
echo "test_web_page: video job $video made through the page: done, preview and <video> shown"
[[ $(drive "$media/astronaut.png" "$media/messi5.jpg" --type-token wrong --expect-error unauthorized) == "error unauthorized" ]]
echo "test_web_page: a wrong token is shown as the API's error"

#!/usr/bin/python3
"""Drives fswap serve's web page in headless Chromium through chromedriver's W3C WebDriver
HTTP API (standard library only): choose the files, submit, wait for the done state and a
decoded preview, then check the job through the JSON API.

usage: web_page_driver.py BASE_URL SOURCE_IMAGE TARGET_FILE [--token T] [--type-token T]
                          [--trim N] [--expect-error CODE] [--timeout S]
--token: the server's token (for the API check); --type-token: what to type into the page's
token field (default: --token). --trim: typed into "Last frame"; a video result must then show
a <video> and N frames. --expect-error: the page must show this error code instead.
Prints the job id on success (or "error CODE"); exit 1 with a message on failure.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C element reference key
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]


def call(method, url, body=None, timeout=60, token=""):
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{method} {url}: HTTP {e.code}: {e.read()[:500]!r}") from None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Session:
    def __init__(self, driver_url, user_data_dir):
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium",
                                   "args": CHROMIUM_ARGS + [f"--user-data-dir={user_data_dir}"]}}}}
        self.url = driver_url + "/session/" + call("POST", driver_url + "/session", caps)["value"]["sessionId"]

    def cmd(self, method, path, body=None):
        return call(method, self.url + path, body)["value"] if method != "DELETE" else call(method, self.url + path)

    def find(self, css):
        return self.cmd("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def js(self, script):
        return self.cmd("POST", "/execute/sync", {"script": script, "args": []})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("base_url")
    p.add_argument("source")
    p.add_argument("target")
    p.add_argument("--token", default="")
    p.add_argument("--type-token", default=None)
    p.add_argument("--trim", type=int, default=0)
    p.add_argument("--expect-error", default="")
    p.add_argument("--timeout", type=float, default=90)
    a = p.parse_args()
    typed_token = a.token if a.type_token is None else a.type_token

    port = free_port()
    log = open(os.path.join(tempfile.gettempdir(), f"chromedriver-{os.getpid()}.log"), "w")
    driver = subprocess.Popen(["/usr/bin/chromedriver", f"--port={port}"], stdout=log, stderr=subprocess.STDOUT)
    driver_url = f"http://127.0.0.1:{port}"
    session = None
    profile = tempfile.mkdtemp(prefix="fswap-chromium-")
    try:
        for _ in range(100):
            try:
                if call("GET", driver_url + "/status", timeout=2)["value"]["ready"]:
                    break
            except (OSError, RuntimeError):
                pass
            time.sleep(0.1)
        # Chromium may still write to its profile after the session is deleted, so the profile
        # goes only once the driver (and the browser under it) has exited.
        session = Session(driver_url, profile)
        session.cmd("POST", "/url", {"url": a.base_url + "/"})
        title = session.cmd("GET", "/title")
        if title != "fswap":
            raise RuntimeError(f"the page title is {title!r}, expected 'fswap'")
        # A file input takes the path as typed text (chromedriver uploads it to the browser).
        session.cmd("POST", f"/element/{session.find('#source')}/value", {"text": os.path.abspath(a.source)})
        session.cmd("POST", f"/element/{session.find('#target')}/value", {"text": os.path.abspath(a.target)})
        if a.trim:
            session.cmd("POST", f"/element/{session.find('#trim_frame_end')}/value", {"text": str(a.trim)})
        if typed_token:
            session.cmd("POST", f"/element/{session.find('#token')}/value", {"text": typed_token})
        session.cmd("POST", f"/element/{session.find('#submit')}/click", {})

        deadline = time.time() + a.timeout
        seen = set()
        state = None
        while time.time() < deadline:
            state = session.js(
                "const p = document.getElementById('preview');"
                "return {state: document.body.dataset.state || '', id: document.getElementById('job-id').textContent,"
                " error: document.getElementById('error').textContent,"
                " progress: document.getElementById('progress-text').textContent,"
                " preview: p.complete ? p.naturalWidth : 0,"
                " download: document.getElementById('download').getAttribute('href') || '',"
                " video: document.getElementById('video').classList.contains('hidden') ? ''"
                "        : (document.getElementById('video').getAttribute('src') || '')};")
            seen.add(state["state"])
            if a.expect_error and state["state"] == "error":
                if f"({a.expect_error})" not in state["error"]:
                    raise RuntimeError(f"the page shows {state['error']!r}, expected code {a.expect_error}")
                print("error " + a.expect_error)
                return
            if state["state"] == "error" or state["state"] == "failed":
                raise RuntimeError(f"the page shows an error: {state['error']!r}")
            if state["state"] == "done" and state["preview"] > 0:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"no done state with a decoded preview within {a.timeout} s; last: {state}, seen {seen}")
        if not state["download"]:
            raise RuntimeError("no download link")
        if a.expect_error:
            raise RuntimeError(f"the job finished; expected the error {a.expect_error}")
        frames = a.trim or 1
        if f"frames {frames} / {frames}" not in state["progress"]:
            raise RuntimeError(f"progress text {state['progress']!r}, expected frames {frames} / {frames}")
        if a.trim and not state["video"]:
            raise RuntimeError("a video result but no <video> with a src")
        job_id = state["id"]
    finally:
        if session:
            try:
                session.cmd("DELETE", "")
            except (OSError, RuntimeError):
                pass
        driver.terminate()
        driver.wait(10)
        shutil.rmtree(profile, ignore_errors=True)

    # The job the page made, through the API.
    job = call("GET", f"{a.base_url}/v1/jobs/{job_id}", token=a.token)
    if job["state"] != "done":
        raise RuntimeError(f"job {job_id} is {job['state']} in the API")
    if a.trim and job["options"]["trim_frame_end"] != a.trim:
        raise RuntimeError(f"job {job_id}: trim_frame_end {job['options']['trim_frame_end']}, typed {a.trim}")
    req = urllib.request.Request(f"{a.base_url}/v1/jobs/{job_id}/result",
                                 headers={"Authorization": "Bearer " + a.token} if a.token else {})
    with urllib.request.urlopen(req, timeout=30) as r:
        if r.status != 200 or len(r.read()) == 0:
            raise RuntimeError(f"job {job_id}: no result")
    print(job_id)


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        print(f"web_page_driver: {e}", file=sys.stderr)
        sys.exit(1)

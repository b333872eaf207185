#!/usr/bin/python3
"""Checks the Dockerfile, .dockerignore and compose.yaml against the repository (CI builds no image).

usage: test_container_files.py FSWAP_BINARY SOURCE_DIR

- The Dockerfile runs scripts/setup.sh with the flags of the README's main command
  (scripts/run.sh), and scripts/build.sh with flags it takes, a preset of CMakePresets.json and
  a target that exists; every script and file it names exists, none hidden by .dockerignore;
  the build-tree paths it copies are where this build (another preset) has them.
- The build stage's packaging step, run on this build in a scratch folder, makes a package whose
  wrapper starts fswap and whose libraries cover all but what the runtime image provides.
- The runtime stage runs as a non-root user, with the data and models volumes, the port it
  exposes, and a health check that passes against a real `fswap serve` (run here on a free port).
- Every `fswap serve` flag in the Dockerfile and in compose.yaml is one `fswap serve --help` lists.
- compose.yaml: the default service builds this Dockerfile and reserves an NVIDIA GPU; the scale
  profile has redis, a --no-worker front end and GPU workers on the same redis:// queue and the
  same data volume, with the health check off in the workers (they have no HTTP listener).
Needs python3-yaml (scripts/setup.sh --tests).
"""
import fnmatch
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time

import yaml

FSWAP, ROOT = sys.argv[1], sys.argv[2]
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
    return condition


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


def dockerfile_instructions(text):
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            keyword, _, rest = current.strip().partition(" ")
            lines.append((keyword.upper(), rest.strip()))
        current = ""
    return lines


def script_calls(text, script):
    """The argument lists of every call of scripts/<script> in shell text."""
    calls = []
    for match in re.finditer(rf"(?:^|[\s;&|(]){re.escape('scripts/' + script)}((?:[ \t]+[^\s;&|)]+)*)", text, re.M):
        calls.append(shlex.split(match.group(1)))
    return calls


def serve_flags(args):
    return [a.split("=", 1)[0] for a in args if a.startswith("--")]


def ignored(path, patterns):
    parts = path.split("/")
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        for i in range(1, len(parts) + 1):
            if fnmatch.fnmatch("/".join(parts[:i]), pattern):
                return True
    return False


dockerfile = read("Dockerfile")
instructions = dockerfile_instructions(dockerfile)
dockerignore = [l.strip() for l in read(".dockerignore").splitlines() if l.strip() and not l.startswith("#")]
runs = " ; ".join(rest for keyword, rest in instructions if keyword == "RUN")

# setup.sh: what the README's main command (scripts/run.sh) sets up, plus flags setup.sh takes
# and the README documents as `scripts/setup.sh FLAG`.
setup_calls = script_calls(runs, "setup.sh")
run_sh_setup = script_calls(read("scripts/run.sh"), "setup.sh")
readme = read("README.md")
check(len(setup_calls) == 1, f"the Dockerfile should run scripts/setup.sh once, runs it {len(setup_calls)} times")
check(len(run_sh_setup) == 1, "scripts/run.sh (the README's main command) should run scripts/setup.sh once")
setup_flags_taken = set(re.findall(r"^\s*(--[a-z-]+)\)", read("scripts/setup.sh"), re.M))
check(setup_flags_taken, "no flags found in scripts/setup.sh's case")
for call in setup_calls:
    for flag in run_sh_setup[0] if run_sh_setup else []:
        check(flag in call, f"the Dockerfile runs scripts/setup.sh without {flag}, which scripts/run.sh passes")
    for flag in call:
        check(flag in setup_flags_taken, f"scripts/setup.sh takes no {flag} (it takes {sorted(setup_flags_taken)})")
        check(f"scripts/setup.sh {flag}" in readme, f"the Dockerfile runs scripts/setup.sh {flag}, which the README does not document")

# build.sh: flags it takes, a preset that exists, a target that exists.
build_calls = script_calls(runs, "build.sh")
check(len(build_calls) == 1, f"the Dockerfile should run scripts/build.sh once, runs it {len(build_calls)} times")
build_flags_taken = set(re.findall(r"^\s*(--[a-z-]+)\)", read("scripts/build.sh"), re.M))
presets = json.loads(read("CMakePresets.json"))
configure_presets = {p["name"]: p for p in presets["configurePresets"]}
build_presets = {p["name"] for p in presets["buildPresets"]}
preset = "release"
for call in build_calls:
    flags = call[0::2]
    for flag in flags:
        check(flag in build_flags_taken, f"scripts/build.sh takes no {flag} (it takes {sorted(build_flags_taken)})")
    options = dict(zip(call[0::2], call[1::2]))
    preset = options.get("--preset", "release")
    check(preset in configure_presets and preset in build_presets, f"CMakePresets.json has no preset {preset}")
    check(configure_presets.get(preset, {}).get("cacheVariables", {}).get("FSWAP_CUDA") == "ON",
          f"the image's preset {preset} does not build the CUDA targets (FSWAP_CUDA)")
    if "--target" in options:
        target = options["--target"]
        check(re.search(rf"add_executable\({re.escape(target)}[\s)]", read("src/cli/CMakeLists.txt")),
              f"no target {target} in src/cli/CMakeLists.txt")

# Every script the Dockerfile names exists (and is executable when it is run).
for name in sorted({n.rstrip(".") for n in re.findall(r"scripts/[A-Za-z0-9_.-]+", dockerfile)}):
    path = os.path.join(ROOT, name)
    if check(os.path.isfile(path), f"the Dockerfile names {name}, which does not exist"):
        check(os.access(path, os.X_OK) or name.endswith(".py"), f"{name} is not executable")
    check(not ignored(name, dockerignore), f".dockerignore hides {name}, which the Dockerfile uses")

# COPY sources from the build context exist and are not ignored; what setup and build need is
# not ignored either (every tracked top-level entry but the generated ones).
for keyword, rest in instructions:
    if keyword == "COPY" and "--from=" not in rest:
        sources = [a for a in shlex.split(rest) if not a.startswith("--")][:-1]
        for source in sources:
            if source == ".":
                continue
            check(os.path.exists(os.path.join(ROOT, source)), f"COPY {source}: no such file in the repository")
            check(not ignored(source, dockerignore), f".dockerignore hides {source}, which the Dockerfile copies")
tracked = subprocess.run(["git", "-C", ROOT, "ls-files"], capture_output=True, text=True, check=True).stdout.split()
top_level = sorted({t.split("/")[0] for t in tracked})
for entry in top_level:
    if entry in (".gitignore", ".dockerignore"):
        continue
    check(not ignored(entry, dockerignore), f".dockerignore hides {entry}, which the build may need")
for generated in ("build", "third_party", ".git"):
    check(ignored(generated, dockerignore), f".dockerignore should leave out {generated}/ (made inside the image)")

# Build-tree paths: build/<preset>/... exists in this checkout's build (another preset, same tree).
binary_dir_of = {name: p["binaryDir"].replace("${sourceDir}/", "") for name, p in configure_presets.items()}
for path in sorted(set(re.findall(r"\bbuild/[A-Za-z0-9_./-]+", runs))):
    preset_dir = binary_dir_of.get(preset, "")
    if check(path.startswith(preset_dir + "/"), f"the Dockerfile reads {path}, outside the {preset} preset's {preset_dir}"):
        relative = path[len(preset_dir) + 1:]
        check(os.path.realpath(FSWAP).endswith("/" + relative),
              f"the Dockerfile takes the program from {path}, but the build has it at {FSWAP}")
# third_party/ paths: files scripts/fetch_assets.py installs (models/manifest.json's "to").
manifest = json.loads(read("models/manifest.json"))
fetched = ["third_party/" + f["to"] for group in manifest.values() if isinstance(group, list)
           for entry in group for f in entry.get("files", [])]
for pattern in sorted(set(re.findall(r"\bthird_party/[A-Za-z0-9_./*-]+", runs))):
    check(fnmatch.filter(fetched, pattern), f"the Dockerfile copies {pattern}, which setup.sh does not fetch")

# The runtime stage.
stages = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
check(len(stages) >= 2, "the Dockerfile should have a build and a runtime stage")
runtime = instructions[stages[-1]:]
check(re.search(r"nvidia/cuda:\$\{CUDA_VERSION\}-cudnn-runtime-ubuntu", runtime[0][1]) and
      re.search(r"ARG CUDA_VERSION=13\.", dockerfile), "the runtime stage should be nvidia/cuda's CUDA 13 cudnn-runtime image")
users = [rest for keyword, rest in runtime if keyword == "USER"]
check(users and users[-1] not in ("root", "0"), "the runtime stage should run as a non-root USER")
volumes = [json.loads(rest) for keyword, rest in runtime if keyword == "VOLUME"]
volume_paths = {v for vs in volumes for v in vs}
check({"/data", "/models"} <= volume_paths, f"the runtime stage should declare /data and /models volumes, has {volume_paths}")
entrypoint = next((json.loads(rest) for keyword, rest in runtime if keyword == "ENTRYPOINT"), [])
command = next((json.loads(rest) for keyword, rest in runtime if keyword == "CMD"), [])
check(entrypoint == ["fswap", "serve"], f"the entry point should be fswap serve, is {entrypoint}")
options = dict(zip(command[0::2], command[1::2]))
check(options.get("--host") == "0.0.0.0" and options.get("--data-dir") == "/data" and options.get("--models-dir") == "/models",
      f"the default command should serve on 0.0.0.0 with --data-dir /data --models-dir /models: {command}")
port = options.get("--port", "")
check([rest for keyword, rest in runtime if keyword == "EXPOSE"] == [port], f"EXPOSE should be the served port {port}")
healthcheck = next((rest for keyword, rest in runtime if keyword == "HEALTHCHECK"), "")
health_command = healthcheck.split(" CMD ", 1)[1] if " CMD " in healthcheck else ""
check(f"http://127.0.0.1:{port}/healthz" in health_command, f"the health check should ask :{port}/healthz: {healthcheck}")

# Every serve flag used is one fswap serve takes.
serve_help = subprocess.run([FSWAP, "serve", "--help"], capture_output=True, text=True).stdout
known = set(re.findall(r"(--[a-z][a-z-]*)", serve_help))
check("--data-dir" in known, "fswap serve --help lists no --data-dir")
compose = yaml.safe_load(read("compose.yaml"))
services = compose.get("services", {})
uses = [("Dockerfile CMD", command)] + [(f"compose {name}", s.get("command", [])) for name, s in services.items()
                                         if s.get("image", "").startswith("fswap") or "build" in s]
for where, args in uses:
    for flag in serve_flags(args):
        check(flag in known, f"{where} passes {flag}, which fswap serve does not take")

# compose.yaml.
def gpu_reserved(service):
    devices = service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    return any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices)


def volume_for(service, target):
    return next((v.split(":")[0] for v in service.get("volumes", []) if v.split(":")[1] == target), None)


main = services.get("fswap", {})
check(main.get("build") in (".", {"context": "."}) and os.path.isfile(os.path.join(ROOT, "Dockerfile")),
      "compose's fswap service should build the Dockerfile at the repository root")
check(gpu_reserved(main), "compose's fswap service should reserve an NVIDIA GPU (deploy.resources.reservations.devices)")
check(f"{port}:{port}" in main.get("ports", []), f"compose's fswap service should publish port {port}")
check(volume_for(main, "/data") and volume_for(main, "/models"), "compose's fswap service should mount /data and /models")
check("profiles" not in main, "compose's fswap service should run without a profile")
scale = {name: s for name, s in services.items() if "scale" in s.get("profiles", [])}
redis = [name for name, s in scale.items() if s.get("image", "").startswith("redis")]
workers = [name for name, s in scale.items() if "--worker-only" in s.get("command", [])]
fronts = [name for name, s in scale.items() if "--no-worker" in s.get("command", [])]
check(len(redis) == 1 and workers and len(fronts) == 1, "the scale profile should have redis, a --no-worker front end and workers")
if len(redis) == 1 and workers and len(fronts) == 1:
    queues = set()
    for name in workers + fronts:
        args = scale[name]["command"]
        queue = args[args.index("--queue") + 1] if "--queue" in args else ""
        queues.add(queue)
        check(queue.startswith(f"redis://{redis[0]}:"), f"compose {name} should take --queue redis://{redis[0]}:PORT, has '{queue}'")
        check(redis[0] in scale[name].get("depends_on", []), f"compose {name} should depend on {redis[0]}")
    check(len(queues) == 1, f"the front end and the workers should share one queue, have {queues}")
    data_volumes = {volume_for(scale[name], "/data") for name in workers + fronts}
    check(len(data_volumes) == 1 and None not in data_volumes, "the front end and the workers should share one /data volume")
    for name in workers:
        check(gpu_reserved(scale[name]), f"compose {name} should reserve an NVIDIA GPU")
        check(scale[name].get("healthcheck", {}).get("disable") is True, f"compose {name} has no HTTP listener: its health check should be off")
declared = set(compose.get("volumes", {}) or {})
for name, s in services.items():
    for v in s.get("volumes", []):
        source = v.split(":")[0]
        check(source.startswith((".", "/")) or source in declared, f"compose {name} mounts {source}, not declared under volumes")

# The build stage's packaging step (the RUN that fills /opt/fswap), run on this build with
# /opt/fswap moved to a scratch folder: the wrapper starts the packaged program, and every library
# it links resolves inside the package except those the runtime image provides.
package_step = next((rest for keyword, rest in instructions if keyword == "RUN" and "/opt/fswap/libexec/fswap" in rest), "")
check(package_step, "the Dockerfile has no step that packages /opt/fswap/libexec/fswap")
if package_step:
    scratch = subprocess.run(["mktemp", "-d"], capture_output=True, text=True, check=True).stdout.strip()
    try:
        src, opt = os.path.join(scratch, "src"), os.path.join(scratch, "opt/fswap")
        os.makedirs(os.path.join(src, "third_party"))
        os.symlink(os.path.join(ROOT, "scripts"), os.path.join(src, "scripts"))
        os.symlink(os.path.join(ROOT, "third_party/models"), os.path.join(src, "third_party/models"))
        # The program as the build stage finds it, at the preset's path.
        program = os.path.join(src, binary_dir_of.get(preset, "build"), "src/cli/fswap")
        os.makedirs(os.path.dirname(program))
        os.symlink(os.path.realpath(FSWAP), program)
        # Files of third_party/onnxruntime/lib: this checkout's, or empty stand-ins for the ones
        # only --with-cuda fetches.
        lib_dir = os.path.join(src, "third_party/onnxruntime/lib")
        os.makedirs(lib_dir)
        for path in fetched:
            if path.startswith("third_party/onnxruntime/lib/"):
                here = os.path.join(ROOT, path)
                there = os.path.join(src, path)
                if os.path.exists(here):
                    os.symlink(here, there)
                else:
                    open(there, "w").close()
        step = package_step.replace("/opt/fswap", opt)
        done = subprocess.run(["bash", "-o", "pipefail", "-c", step], cwd=src, capture_output=True, text=True)
        if check(done.returncode == 0, f"the packaging step failed on this build: {done.stderr[-2000:]}"):
            wrapper = os.path.join(opt, "bin/fswap")
            version = subprocess.run([wrapper, "--version"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
            check(version.returncode == 0, f"the packaged fswap does not start through its wrapper: {version.stderr}")
            env = {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": os.path.join(opt, "lib")}
            linked = subprocess.run(["ldd", os.path.join(opt, "libexec/fswap")], capture_output=True, text=True, env=env).stdout
            provided = re.compile(r"^(ld-linux|libc\.so|libm\.so|libdl\.so|librt\.so|libpthread\.so|libstdc\+\+\.so|libgcc_s\.so|"
                                  r"libcuda\.so|libcudart\.so|libcudnn|libcublas)")
            outside = [l.split()[0] for l in linked.splitlines() if "=>" in l and not provided.match(l.split()[0])
                       and not l.split("=>")[1].strip().startswith(os.path.join(opt, "lib"))]
            check(not outside, f"the package misses libraries the runtime image lacks: {outside}")
            for name in ("bin/serve_mps.sh", "models/fr_detect.onnx", "lib/libonnxruntime_providers_cuda.so"):
                check(os.path.exists(os.path.join(opt, name)), f"the package has no {name}")
    finally:
        subprocess.run(["rm", "-rf", scratch])

# The health check command, run against a real server on a free port.
if health_command:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    free = sock.getsockname()[1]
    sock.close()
    data = subprocess.run(["mktemp", "-d"], capture_output=True, text=True, check=True).stdout.strip()
    server = subprocess.Popen([FSWAP, "serve", "--host", "127.0.0.1", "--port", str(free), "--data-dir", data],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = server.stdout.readline()
        check("serving on" in line, f"fswap serve did not start: {line}")
        probe = health_command.replace(f":{port}/", f":{free}/")
        ok = subprocess.run(["sh", "-c", probe], capture_output=True, text=True)
        check(ok.returncode == 0, f"the health check failed against a running server: {probe}: {ok.stderr}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        subprocess.run(["rm", "-rf", data])
    wrong = subprocess.run(["sh", "-c", health_command.replace(f":{port}/", f":{free}/")], capture_output=True)
    check(wrong.returncode != 0, "the health check passes with no server: it checks nothing")

if failures:
    for f in failures:
        print(f"test_container_files: FAIL: {f}", file=sys.stderr)
    sys.exit(1)
print(f"test_container_files: Dockerfile (setup.sh {' '.join(setup_calls[0])}, "
      f"build.sh {' '.join(build_calls[0])}), .dockerignore and compose.yaml ({len(services)} services) agree "
      f"with the repository; the health check passes against fswap serve")

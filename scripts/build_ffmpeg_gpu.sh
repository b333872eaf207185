#!/usr/bin/env bash
# Builds the FFmpeg that the GPU bundle carries: Debian 12's own FFmpeg source (apt-get source,
# the same 5.1 API the CPU build compiles against), configured with only what fswap uses, plus
# NVDEC (FFmpeg's CUDA hardware decoding through NVIDIA's codec headers, loaded at run time from
# the driver). Debian's FFmpeg with everything it links is ~160 MB (GPU.md); this one is a few MB,
# so the bundle can carry `fswap` with video I/O.
#   scripts/build_ffmpeg_gpu.sh        # → build/ffmpeg-gpu/{include,lib,lib/pkgconfig}; cached
# Needs deb-src access to Debian's archive (added here if missing), nasm, libx264-dev and
# libffmpeg-nvenc-dev (installed here). Takes ~10 minutes on 2 cores the first time.
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=$PWD/build/ffmpeg-gpu
STAMP=$PREFIX/.built-5.1
JOBS=${JOBS:-2}
[[ -f $STAMP ]] && { echo "ffmpeg-gpu: cached in $PREFIX"; exit 0; }

sudo_cmd=()
[[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
need=()
for p in nasm libx264-dev libffmpeg-nvenc-dev dpkg-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ! apt-get indextargets --format '$(IDENTIFIER)' 2>/dev/null | grep -qx Sources; then
  "${sudo_cmd[@]}" tee /etc/apt/sources.list.d/fswap-debian-src.sources >/dev/null <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  "${sudo_cmd[@]}" apt-get update -q
fi
((${#need[@]})) && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${need[@]}"

SRC=$PWD/build/ffmpeg-src
rm -rf "$SRC" && mkdir -p "$SRC"
(cd "$SRC" && apt-get source -q ffmpeg >/dev/null)
cd "$SRC"/ffmpeg-5.1*/

# Decoders: the video codecs of common clips and the still-image formats video/still_image.cc
# reads; encoders: libx264 (the default video codec), aac (audio re-encode), png/mjpeg (images).
./configure --prefix="$PREFIX" --enable-shared --disable-static --enable-pic \
  --disable-programs --disable-doc --disable-network --disable-autodetect --disable-everything \
  --enable-gpl --enable-libx264 --enable-zlib \
  --enable-ffnvcodec --enable-cuda --enable-nvdec --enable-cuvid \
  --enable-hwaccel=h264_nvdec,hevc_nvdec,vp9_nvdec,av1_nvdec,mpeg4_nvdec \
  --enable-decoder=h264,hevc,vp9,mpeg4,mpeg2video,mjpeg,png,bmp,aac,ac3,eac3,mp3,opus,vorbis,flac,pcm_s16le,pcm_f32le \
  --enable-encoder=libx264,aac,png,mjpeg,bmp \
  --enable-demuxer=mov,matroska,avi,image2,png_pipe,jpeg_pipe,bmp_pipe,mp3,aac,ac3,wav \
  --enable-muxer=mp4,mov,matroska,image2 \
  --enable-parser=h264,hevc,vp9,mpeg4video,aac,ac3,mpegaudio,mjpeg,png,opus,vorbis,flac \
  --enable-bsfs --enable-protocol=file --enable-swscale --enable-swresample \
  --disable-avdevice --disable-avfilter --disable-postproc >/dev/null
make -j"$JOBS" >/dev/null
make install >/dev/null
touch "$STAMP"
echo "ffmpeg-gpu: built in $PREFIX ($(du -sh "$PREFIX/lib" | cut -f1) of libraries)"

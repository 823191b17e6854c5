#!/usr/bin/env bash
# Download the VOT2018 short-term sequences and the pysot metadata json VOT2018.json.
#
# Usage: bash data/get_VOT2018_data.sh [DATA_ROOT]     (default DATA_ROOT: the data/ folder of this repository)
#
# Result: DATA_ROOT/VOT2018/<sequence>/{color/*.jpg, groundtruth.txt, *.tag}, DATA_ROOT/VOT2018/list.txt and
# DATA_ROOT/VOT2018.json. Like the original (data/get_test_data.sh, through jvlmdr/trackdat's download_vot.sh),
# the sequence list and archive URLs come from the VOT challenge's description.json; VOT2018.json is the file the
# original downloaded, and is rebuilt with data/create_json.py when that download fails. Rerunning resumes: finished
# sequences are kept, partial downloads are continued.
# Needs: bash, jq, unzip, and wget or curl (VOT_DOWNLOADER=wget|curl picks one); network access to
# data.votchallenge.net (VOT2018_BASE_URL and VOT2018_JSON_URL override the sources).
set -euo pipefail

usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; }
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then usage; exit 0; fi
if [[ $# -gt 1 ]]; then usage >&2; exit 2; fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
root="${1:-$here}"
base_url="${VOT2018_BASE_URL:-http://data.votchallenge.net/vot2018/main}"
json_url="${VOT2018_JSON_URL:-http://www.robots.ox.ac.uk/~qwang/VOT2018.json}"
dest="$root/VOT2018"
dl="$root/.VOT2018_download"

die() { echo "error: $*" >&2; exit 1; }

for tool in jq unzip; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not installed (apt-get install $tool)"
done
downloader="${VOT_DOWNLOADER:-}"
if [[ -z "$downloader" ]]; then
    if command -v wget >/dev/null 2>&1; then downloader=wget; elif command -v curl >/dev/null 2>&1; then downloader=curl; fi
fi
case "$downloader" in
    wget) fetch() { wget -nv -c -O "$2" "$1"; } ;;
    curl) fetch() { curl -fsSL --retry 3 -o "$2" "$1"; } ;;
    "") die "neither wget nor curl is installed" ;;
    *) die "VOT_DOWNLOADER must be wget or curl, got '$downloader'" ;;
esac
command -v "$downloader" >/dev/null 2>&1 || die "'$downloader' is not installed"

mkdir -p "$dest" "$dl"
echo "[VOT2018] description: $base_url/description.json"
fetch "$base_url/description.json" "$dl/description.json" \
    || die "cannot download $base_url/description.json (no network, or the VOT server moved; set VOT2018_BASE_URL)"
jq -e '.sequences | length > 0' "$dl/description.json" >/dev/null \
    || die "$dl/description.json is not a VOT description (no 'sequences')"

jq -r '.sequences[].name' "$dl/description.json" >"$dl/list.txt"
count=$(wc -l <"$dl/list.txt")
echo "[VOT2018] $count sequences"

# Archive URLs in description.json are relative to base_url (or absolute).
resolve() { case "$1" in http://* | https://*) echo "$1" ;; *) echo "$base_url/$1" ;; esac; }

i=0
while IFS=$'\t' read -r name anno_url color_url; do
    i=$((i + 1))
    seq_dir="$dest/$name"
    if [[ -f "$seq_dir/.complete" ]]; then
        continue
    fi
    echo "[VOT2018] ($i/$count) $name"
    mkdir -p "$seq_dir/color"
    fetch "$(resolve "$anno_url")" "$dl/$name.annotations.zip" || die "download failed: $anno_url"
    fetch "$(resolve "$color_url")" "$dl/$name.color.zip" || die "download failed: $color_url"
    unzip -q -o "$dl/$name.annotations.zip" -d "$seq_dir" || die "corrupt archive $dl/$name.annotations.zip"
    unzip -q -o "$dl/$name.color.zip" -d "$seq_dir/color" || die "corrupt archive $dl/$name.color.zip"
    if [[ -d "$seq_dir/color/color" ]]; then  # archives that hold a color/ folder themselves
        mv "$seq_dir/color/color/"* "$seq_dir/color/" && rmdir "$seq_dir/color/color"
    fi
    [[ -s "$seq_dir/groundtruth.txt" ]] || die "$seq_dir/groundtruth.txt missing after unpacking"
    frames=$(find "$seq_dir/color" -maxdepth 1 -name '*.jpg' | wc -l)
    lines=$(grep -c . "$seq_dir/groundtruth.txt")
    [[ "$frames" -eq "$lines" ]] || die "$name: $frames frames but $lines groundtruth lines"
    touch "$seq_dir/.complete"
    rm -f "$dl/$name.annotations.zip" "$dl/$name.color.zip"
done < <(jq -r '.sequences[] | [.name, .annotations.url, .channels.color.url] | @tsv' "$dl/description.json")

cp "$dl/list.txt" "$dest/list.txt"
missing=0
while read -r name; do
    [[ -f "$dest/$name/.complete" ]] || { echo "missing sequence: $name" >&2; missing=$((missing + 1)); }
done <"$dest/list.txt"
[[ "$missing" -eq 0 ]] || die "$missing sequences are incomplete; rerun to resume"

echo "[VOT2018] metadata json: $json_url"
if fetch "$json_url" "$root/VOT2018.json.part" && jq -e 'length > 0' "$root/VOT2018.json.part" >/dev/null; then
    mv "$root/VOT2018.json.part" "$root/VOT2018.json"
else
    rm -f "$root/VOT2018.json.part"
    echo "[VOT2018] download failed; building VOT2018.json from the sequences (data/create_json.py)"
    python="${PYTHON:-python3}"
    [[ -x "$repo/.venv/bin/python" ]] && python="$repo/.venv/bin/python"
    "$python" "$repo/data/create_json.py" VOT2018 --data-root "$root"
fi
n_json=$(jq 'length' "$root/VOT2018.json")
[[ "$n_json" -eq "$count" ]] || die "VOT2018.json lists $n_json sequences, expected $count"
rm -rf "$dl"
echo "[VOT2018] done: $dest ($count sequences), $root/VOT2018.json"

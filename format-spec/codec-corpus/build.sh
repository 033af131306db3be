#!/usr/bin/env bash
# Builds the speech corpus that the audio codec benchmark (format-spec/benches/speech.rs,
# BENCHMARKS.md "Audio codec on real speech") measures: real recorded human speech that Debian
# packages ship, in the classes a voice agent records. The audio is not kept in the repository
# (the Asterisk prompts are CC-BY-SA-3.0, the pocketsphinx test data BSD-2): run this script.
#
#   bash format-spec/codec-corpus/build.sh [OUT_DIR]      (default: target/codec-corpus)
#
# Needs: apt-get install sox asterisk-core-sounds-en-wav pocketsphinx-testdata
#
# Sources
#   * asterisk-core-sounds-en-wav: IVR prompts read by Allison Smith, recorded and shipped as
#     8 kHz 16-bit mono WAV (native narrowband telephone audio).
#   * pocketsphinx-testdata: 16 kHz 16-bit recordings of read speech (CMU test utterances,
#     LibriVox excerpts decoded to PCM).
#
# Output: OUT_DIR/<class>/<name>.s16 (raw signed 16-bit little-endian mono) and
# OUT_DIR/manifest.tsv (class, rate, file, samples). Classes:
#   wb16      16 kHz wideband speech as shipped
#   nb8       native 8 kHz telephone prompts as shipped
#   ulaw8     the nb8 prompts through G.711 mu-law and back (every sample on the 256-level grid)
#   alaw8     the nb8 prompts through G.711 A-law and back
#   tel8n     the wb16 speech through a telephone channel: 300-3400 Hz band, 8 kHz, and
#             background noise at about -45 dBFS (sox's repeatable noise, so runs agree)
#   tel16 / tel24 / tel48
#             the nb8 prompts resampled to 16, 24 and 48 kHz (what a 16/24/48 kHz pipeline such
#             as LiveKit's or Pipecat's records from a phone call)
set -euo pipefail
OUT=${1:-target/codec-corpus}
AST=/usr/share/asterisk/sounds/en_US_f_Allison
PS=/usr/share/pocketsphinx/test/data
for need in sox "$AST/vm-intro.wav" "$PS/goforward.raw"; do
    if ! command -v "$need" >/dev/null 2>&1 && [ ! -e "$need" ]; then
        echo "missing $need: apt-get install sox asterisk-core-sounds-en-wav pocketsphinx-testdata" >&2
        exit 1
    fi
done
rm -rf "$OUT"
mkdir -p "$OUT"/{wb16,nb8,ulaw8,alaw8,tel8n,tel16,tel24,tel48}
# prompts: the longest speech prompts (tt-monkeys is not speech), about 3.5 minutes in all
PROMPTS="demo-instruct priv-callee-options demo-congrats basic-pbx-ivr-main demo-echotest
conf-adminmenu-18 conf-usermenu-162 screen-callee-options vm-options demo-abouttotry
demo-moreinfo vm-msginstruct dir-intro-fn vm-opts-full confbridge-mute-extended demo-nogo
tt-allbusy queue-periodic-announce vm-review vm-instructions"
RAW="-t raw -e signed-integer -b 16 -c 1 -L"
for p in $PROMPTS; do
    src="$AST/$p.wav"
    sox "$src" $RAW "$OUT/nb8/$p.s16"
    sox "$src" -t raw -e mu-law -b 8 - | sox -t raw -e mu-law -b 8 -r 8000 -c 1 - $RAW "$OUT/ulaw8/$p.s16"
    sox "$src" -t raw -e a-law -b 8 - | sox -t raw -e a-law -b 8 -r 8000 -c 1 - $RAW "$OUT/alaw8/$p.s16"
    for r in 16 24 48; do
        sox "$src" $RAW "$OUT/tel$r/$p.s16" rate -h ${r}k
    done
done
WB="$PS/goforward.raw $PS/numbers.raw $PS/something.raw $PS/tidigits/dhd.2934z.raw
$PS/cards/001.wav $PS/cards/002.wav $PS/cards/003.wav $PS/cards/004.wav $PS/cards/005.wav
$(ls "$PS"/librivox/*.wav)"
for f in $WB; do
    name=$(basename "${f%.*}")
    case "$f" in
        *.raw) in=(-t raw -e signed-integer -b 16 -c 1 -r 16000 -L "$f") ;;
        *) in=("$f") ;;
    esac
    sox "${in[@]}" $RAW "$OUT/wb16/$name.s16"
    # telephone channel: band-limit to 300-3400 Hz at 8 kHz, then mix in steady pink noise
    len=$(sox "${in[@]}" -n stat 2>&1 | awk '/Length/ {print $3}')
    band=$(mktemp --suffix .wav); noise=$(mktemp --suffix .wav)
    sox -R "${in[@]}" -b 16 "$band" sinc 300-3400 rate -h 8k
    sox -R -n -r 8000 -c 1 -b 16 "$noise" synth "$len" pinknoise vol 0.006
    sox -R -m "$band" "$noise" $RAW "$OUT/tel8n/$name.s16"
    rm -f "$band" "$noise"
done
{
    printf 'class\trate\tfile\tsamples\n'
    for d in "$OUT"/*/; do
        class=$(basename "$d")
        case "$class" in
            wb16|tel16) rate=16000 ;; tel24) rate=24000 ;; tel48) rate=48000 ;; *) rate=8000 ;;
        esac
        for f in "$d"*.s16; do
            printf '%s\t%s\t%s\t%s\n' "$class" "$rate" "$class/$(basename "$f")" $(( $(stat -c %s "$f") / 2 ))
        done
    done
} > "$OUT/manifest.tsv"
echo "corpus in $OUT: $(($(wc -l < "$OUT/manifest.tsv") - 1)) files"

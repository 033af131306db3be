#!/usr/bin/env bash
# make_clips.sh — generate the speech clips for the calltape sample calls.
#
# What it does
#   Synthesises one WAV per line of the scripted sample dialogues (calls
#   `slow`, `bargein`, `misheard`, `toolfail`) with espeak-ng, resamples each
#   to 16 kHz mono 16-bit PCM with sox, and writes an index `clips.json`
#   next to the clips.
#
# Output (all in the directory containing this script)
#   <call>_<nn>_<user|agent>.wav   nn = 2-digit, 1-based line index in the call
#   bargein_03_agent_full.wav      the full sentence the agent *would* have
#                                  said before the user barged in
#                                  (bargein_03_agent.wav is the cut version)
#   clips.json                     array of objects:
#     {"file","call","index","speaker","text","samples","sample_rate"}
#     samples = frame count (soxi -s); index = nn as an integer; the
#     `_full` clip has index 3 and the same call/speaker as the cut one.
#
# Voices
#   user  : en-us+f3  (US English, female variant)
#   agent : en-gb     (British English, male)
#
# Requirements
#   espeak-ng, sox, soxi  (Debian: apt-get install espeak-ng sox)
#
# Level: a fixed -3 dB gain is applied to every clip for headroom.
#
# Idempotent: every run regenerates all clips and clips.json from the table
# below and overwrites them in place. sox runs with -R (repeatable dither
# seed), so reruns with the same espeak-ng/sox versions give identical bytes.
# The text in the table is also the transcript; do not edit it casually.
#
# Usage:  samples/clips/make_clips.sh          (from any directory)

set -euo pipefail

OUT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RATE=16000
USER_VOICE="en-us+f3"
AGENT_VOICE="en-gb"

for tool in espeak-ng sox soxi; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "make_clips.sh: '$tool' not found (apt-get install espeak-ng sox)" >&2
    exit 1
  }
done

# call|index|speaker|suffix|text   (suffix is empty or "_full")
CLIPS=$(cat <<'TABLE'
slow|1|agent||Hi, thanks for calling Acme Bank. How can I help you today?
slow|2|user||Hi, I want to check the balance on my checking account.
slow|3|agent||Sure. Your checking account balance is two thousand four hundred and ten dollars.
slow|4|user||And when is my next card payment due?
slow|5|agent||Your next card payment of one hundred and twenty dollars is due on March the fourth.
slow|6|user||Great, thanks. That's all.
slow|7|agent||You're welcome. Have a nice day!
bargein|1|agent||Hello, this is Acme Travel. What can I do for you?
bargein|2|user||I need to change my flight to Boston.
bargein|3|agent||I can help with that. Before we start, let me tell you about our new loyalty program, which gives you double points on every
bargein|3|agent|_full|I can help with that. Before we start, let me tell you about our new loyalty program, which gives you double points on every flight you book this year.
bargein|4|user||No, just change the flight please.
bargein|5|agent||Of course. Your flight is now moved to Friday at nine a.m.
misheard|1|agent||Welcome to Acme Pharmacy. How can I help?
misheard|2|user||I'd like to refill my prescription for Lisinopril.
misheard|3|agent||I found a prescription for Lipitor. Shall I refill that one?
misheard|4|user||No, Lisinopril, the blood pressure one.
misheard|5|agent||Thanks. I've refilled your Lisinopril. It will be ready tomorrow.
toolfail|1|agent||Hi, this is Acme Pizza. What would you like to order?
toolfail|2|user||A large pepperoni pizza delivered to twelve Oak Street.
toolfail|3|agent||Sorry, I'm having trouble reaching our ordering system. Let me try again.
toolfail|4|user||Okay, I'll wait.
toolfail|5|agent||Thanks for waiting. Your large pepperoni pizza will arrive in thirty minutes.
TABLE
)

# Minimal JSON string escaping (backslash, double quote; the texts contain
# no control characters).
json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

TMP_DIR="$(mktemp -d)"
trap 'rm -rf "$TMP_DIR"' EXIT

json_tmp="$TMP_DIR/clips.json"
printf '[\n' >"$json_tmp"
first=1

while IFS='|' read -r call index speaker suffix text; do
  [[ -z "$call" ]] && continue
  case "$speaker" in
    user)  voice=$USER_VOICE ;;
    agent) voice=$AGENT_VOICE ;;
    *) echo "make_clips.sh: bad speaker '$speaker'" >&2; exit 1 ;;
  esac
  file=$(printf '%s_%02d_%s%s.wav' "$call" "$index" "$speaker" "$suffix")
  raw="$TMP_DIR/raw.wav"

  espeak-ng -v "$voice" -w "$raw" -- "$text"
  # gain -3: espeak-ng output peaks at ~0 dBFS on long sentences, and the
  # resampler/dither would otherwise clip a few samples (sox "rate clipped").
  sox -R "$raw" -r "$RATE" -c 1 -b 16 -e signed-integer "$TMP_DIR/$file" gain -3
  mv -f "$TMP_DIR/$file" "$OUT_DIR/$file"

  samples=$(soxi -s "$OUT_DIR/$file")
  sr=$(soxi -r "$OUT_DIR/$file")

  [[ $first -eq 1 ]] || printf ',\n' >>"$json_tmp"
  first=0
  printf '  {"file": %s, "call": %s, "index": %d, "speaker": %s, "text": %s, "samples": %d, "sample_rate": %d}' \
    "$(json_str "$file")" "$(json_str "$call")" "$index" "$(json_str "$speaker")" \
    "$(json_str "$text")" "$samples" "$sr" >>"$json_tmp"
  echo "wrote $file ($samples frames @ $sr Hz)"
done <<<"$CLIPS"

printf '\n]\n' >>"$json_tmp"
mv -f "$json_tmp" "$OUT_DIR/clips.json"
echo "wrote clips.json"

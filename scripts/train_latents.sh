#!/usr/bin/env bash
# Train the default-profile waveform latent models of checkpoints/latents/ and their counts in
# checkpoints/lass/ (checkpoints/latents/README.md and checkpoints/lass/README.md give the steps,
# CPU time and validation losses). Two processes at a time, one thread each; every stage resumes
# from its <out>.state.pt when re-run with the same settings.
#   bash scripts/train_latents.sh [codecs|priors|counts|all]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=checkpoints/latents
LASS=checkpoints/lass
RUN="env OMP_NUM_THREADS=1 python"
LOGS=${LOG_DIR:-_build/logs}; mkdir -p "$LOGS"
CODEC_MINUTES=${CODEC_MINUTES:-30}
PRIOR_MINUTES=${PRIOR_MINUTES:-25}
prior() { $RUN -m sepcore.train.prior_fit --codec $OUT/$1.pt --source-class $2 --cpu-minutes $PRIOR_MINUTES \
            --out $OUT/prior_$1_$2.pt > "$LOGS/prior_$1_$2.log" 2>&1; }
stage_codecs() {
  $RUN -m sepcore.train.vqvae --lin-weight 0 --cpu-minutes $CODEC_MINUTES --out $OUT/vqvae.pt > "$LOGS/vqvae.log" 2>&1 &
  $RUN -m sepcore.train.vqvae --lin-weight 1.0 --cpu-minutes $CODEC_MINUTES --out $OUT/lqvae.pt > "$LOGS/lqvae.log" 2>&1 &
  wait
}
stage_priors() {
  ( prior vqvae drums; prior lqvae drums; prior lqvae guitar ) &
  ( prior vqvae bass; prior lqvae bass ) &
  wait
}
stage_counts() {
  $RUN -m sepcore.train.lass audio-counts --profile default --vqvae $OUT/vqvae.pt --out-dir $LASS
  $RUN -m sepcore.train.lass audio-counts --profile default --vqvae $OUT/lqvae.pt --classes drums bass guitar --out-dir $LASS
  $RUN -m sepcore.train.counts --codec $OUT/vqvae.pt --classes drums bass --pairings 4 --out $LASS/counts_vqvae_drums_bass.pt
  $RUN -m sepcore.train.counts --codec $OUT/lqvae.pt --classes drums bass guitar --pairings 2 \
      --out $LASS/counts_lqvae_drums_bass_guitar.pt
}
case "${1:-all}" in
  codecs) stage_codecs ;;
  priors) stage_priors ;;
  counts) stage_counts ;;
  all) stage_codecs; stage_priors; stage_counts ;;
esac

#!/usr/bin/env bash
# Train the default-profile latent models of checkpoints/latents/ (see its README for wall times).
# Each stage is resumable: re-running continues from <out>.state.pt / partial code files.
set -euo pipefail
OUT=checkpoints/latents
RUN="nice -n 10 env OMP_NUM_THREADS=1 python"
LOGS=${LOG_DIR:-_build/logs}; mkdir -p $LOGS
stage_vqvae() {
  $RUN -m sepcore.train.vqvae --profile default --lin-weight 1.0 --max-minutes 20 --out $OUT/lqvae.pt > $LOGS/lqvae.log 2>&1 &
  $RUN -m sepcore.train.vqvae --profile default --lin-weight 0 --max-minutes 20 --out $OUT/vqvae.pt > $LOGS/vqvae.log 2>&1 &
  wait
}
stage_priors() {
  for kind in lqvae vqvae; do
    for cls in drums bass; do
      ( $RUN -m sepcore.train.prior extract --profile default --vqvae $OUT/$kind.pt --source-class $cls \
            --out $OUT/codes_${kind}_${cls}.pt &&
        $RUN -m sepcore.train.prior train --profile default --codes $OUT/codes_${kind}_${cls}.pt \
            --max-minutes 12 --out $OUT/prior_${kind}_${cls}.pt ) > $LOGS/prior_${kind}_${cls}.log 2>&1 &
    done
  done
  ( $RUN -m sepcore.train.prior extract --profile default --vqvae $OUT/lqvae.pt --source-class guitar \
        --out $OUT/codes_lqvae_guitar.pt &&
    $RUN -m sepcore.train.prior train --profile default --codes $OUT/codes_lqvae_guitar.pt \
        --max-minutes 12 --out $OUT/prior_lqvae_guitar.pt ) > $LOGS/prior_lqvae_guitar.log 2>&1 &
  wait
}
case "${1:-all}" in
  vqvae) stage_vqvae ;;
  priors) stage_priors ;;
  all) stage_vqvae; stage_priors ;;
esac

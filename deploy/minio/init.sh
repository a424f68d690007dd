#!/bin/sh
# One-shot MinIO set-up (compose service `minio-init`, Kubernetes Job `minio-init` of the cpu
# overlay): the bucket, and one user per quakestack service with its least-privilege policy from
# policies/<service>.json (generated for bucket `quakestack` by `python -m quakestack.storage_policies`;
# another bucket: regenerate with --bucket). Idempotent: safe on every start. Only sh and mc (the
# minio/minio image has both); never prints a secret.
set -eu
: "${MINIO_URL:=http://minio:9000}"
: "${S3_BUCKET:=quakestack}"
here=$(dirname "$0")
mc alias set local "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing "local/$S3_BUCKET" >/dev/null
add() {  # service access-key secret-key
  mc admin user add local "$2" "$3" >/dev/null
  mc admin policy create local "quakestack-$1" "$here/policies/$1.json" >/dev/null
  mc admin policy attach local "quakestack-$1" --user "$2" >/dev/null 2>&1 || true  # already attached
  echo "minio-init: $1 has its own user with policy quakestack-$1"
}
add data "$DATA_S3_ACCESS_KEY" "$DATA_S3_SECRET_KEY"
add trainer "$TRAINER_S3_ACCESS_KEY" "$TRAINER_S3_SECRET_KEY"
add inference "$INFERENCE_S3_ACCESS_KEY" "$INFERENCE_S3_SECRET_KEY"

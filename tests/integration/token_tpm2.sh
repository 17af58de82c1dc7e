#!/usr/bin/env bash
# The same token flow on tpm2-pkcs11 over swtpm + tpm2-abrmd: a second, stricter token (it
# rejects templates SoftHSM2 accepts), which keeps our keygen template honest.
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/tpm2.sh"
source "$PKIO_SRC/tests/integration/token_flow.sh"
require_cmd openssl pkcs11-tool python3

tpm2_setup "$(pkio_tmpdir)"
token_flow

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy.h - which tokens may carry a PKIoverheid key that pkio-agent orders a certificate for.
 * PKIo keys belong on certified hardware: software tokens are refused unless the configuration
 * says this is a test station (token.allow_software), and token.allowed (when set) lists the
 * token models and manufacturers (and optionally modules) that may be used. Pure; unit-tested.
 */
#ifndef PKIO_POLICY_H
#define PKIO_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "tok.h"

struct cfg;

/*
 * The name of the software token stack this is (SoftHSM2, tpm2-pkcs11 on a software TPM,
 * opencryptoki's soft token), or NULL for a token that does not say it is software.
 */
const char *policy_software_token(const struct tok_info *info);

/*
 * 0 when the policy allows ordering for keys on this token (module is the PKCS#11 module path);
 * PA_E_REFUSED with the reason in why ("SoftHSM2 is a software token; ...") otherwise.
 */
int policy_check_token(const struct cfg *cfg, const char *module, const struct tok_info *info,
                       char *why, size_t whylen);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#include "policy.h"

#include "config.h"
#include "i18n.h"
#include "pa_err.h"

#include <stdio.h>
#include <string.h>

/* Compare two token-info strings, ignoring runs of blanks ("SW   TPM" == "SW TPM"). */
static bool same_words(const char *a, const char *b)
{
    for (;;) {
        while (*a == ' ' && (a[1] == ' ' || a[1] == '\0'))
            a++;
        while (*b == ' ' && (b[1] == ' ' || b[1] == '\0'))
            b++;
        if (*a != *b)
            return false;
        if (!*a)
            return true;
        a++;
        b++;
    }
}

const char *policy_software_token(const struct tok_info *info)
{
    /* What each software stack writes into CK_TOKEN_INFO (measured on Debian 12). */
    static const struct {
        const char *manufacturer, *model, *name;
    } soft[] = {
        {"SoftHSM project", NULL, "SoftHSM2"},
        {NULL, "SW TPM", N_("tpm2-pkcs11 on a software TPM (swtpm)")},
        {"IBM", "Soft", N_("opencryptoki's soft token")},
        {"IBM", "SoftTok", N_("opencryptoki's soft token")},
        {"IBM Corp.", "IBM SoftTok", N_("opencryptoki's soft token")},
    };

    for (size_t i = 0; i < sizeof(soft) / sizeof(soft[0]); i++)
        if ((!soft[i].manufacturer || same_words(info->manufacturer, soft[i].manufacturer)) &&
            (!soft[i].model || same_words(info->model, soft[i].model)))
            return soft[i].name;
    return NULL;
}

static bool rule_matches(const struct cfg_token_rule *t, const char *module,
                         const struct tok_info *info)
{
    return (!t->manufacturer || same_words(info->manufacturer, t->manufacturer)) &&
           (!t->model || same_words(info->model, t->model)) &&
           (!t->module || (module && strcmp(module, t->module) == 0));
}

int policy_check_token(const struct cfg *cfg, const char *module, const struct tok_info *info,
                       char *why, size_t whylen)
{
    const char *soft = policy_software_token(info);
    bool listed = false;

    if (soft && !cfg->token_allow_software) {
        snprintf(why, whylen,
                 _("%s is a software token; PKIoverheid keys belong on certified hardware (a test "
                   "station sets token.allow_software to true)"),
                 _(soft));
        return PA_E_REFUSED;
    }
    if (!cfg->token_allowed)
        return 0;
    for (size_t i = 0; i < cfg->token_allowed->n && !listed; i++)
        listed = rule_matches(&cfg->token_allowed->v[i], module, info);
    if (listed)
        return 0;
    snprintf(why, whylen,
             _("token model '%s' by '%s' (module %s) is not in token.allowed of the configuration"),
             info->model, info->manufacturer, module ? module : "?");
    return PA_E_REFUSED;
}

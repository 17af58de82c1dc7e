/*
 * fakep11.c - a deliberately small PKCS#11 v2.40 module for the test suite.
 *
 * Why it exists: SoftHSM2 and tpm2-pkcs11 are honest tokens. They cannot be told to report a
 * locked user PIN, a final PIN try, a PIN that must be changed, a protected authentication path
 * (a PIN pad), a token that is pulled out half-way through a run, or two tokens with the same
 * label. The agent must handle every one of these without locking a real card, so this module
 * simulates them. It holds no objects and does no cryptography.
 *
 * Behaviour comes from environment variables read at C_Initialize:
 *
 *   FAKEP11_TOKENS=N        N slots, each with a token (default 1, at most 16). Every token has
 *                           the label "fake-token" (FAKEP11_LABEL overrides it), serials
 *                           FAKE0001, FAKE0002, ..., manufacturer "pkio-test", model "fake".
 *                           Slot IDs are 0x11, 0x12, ... (not 0, so index/ID mix-ups show).
 *   FAKEP11_FLAGS=a,b       token flags: final_try, locked, to_be_changed, count_low,
 *                           protected_auth, no_login_required. Always set:
 *                           CKF_TOKEN_INITIALIZED, CKF_USER_PIN_INITIALIZED, and
 *                           CKF_LOGIN_REQUIRED unless no_login_required.
 *   FAKEP11_PIN=...         the correct user PIN (default 1234). FAKEP11_SO_PIN: the SO PIN
 *                           (default 12345678).
 *   FAKEP11_LOG=FILE        C_Login appends one line "C_Login user=<type> <outcome>" to FILE,
 *                           never the PIN. <type> is user, so, context_specific or a number;
 *                           <outcome> is ok, incorrect, pinpad (NULL PIN on a
 *                           protected_auth token), locked (CKR_PIN_LOCKED), nopin (NULL PIN
 *                           without protected_auth, CKR_ARGUMENTS_BAD) or unsupported
 *                           (CKU_CONTEXT_SPECIFIC, CKR_OPERATION_NOT_INITIALIZED).
 *                           C_SetPIN appends "C_SetPIN <outcome>": ok, incorrect (wrong old
 *                           PIN), pinpad (NULL PINs on a protected_auth token), locked,
 *                           nopin, lenrange or readonly. A user C_Login on a to_be_changed token
 *                           logs "expired" (CKR_PIN_EXPIRED, no try spent, as real cards do).
 *   FAKEP11_REMOVE_AFTER=N  after N successful C_GetTokenInfo calls since C_Initialize (counted
 *                           over all slots) every token is gone: slots lose CKF_TOKEN_PRESENT,
 *                           slot-level calls return CKR_TOKEN_NOT_PRESENT and session calls
 *                           CKR_DEVICE_REMOVED. A pulled token stays pulled for the rest of the
 *                           process, also after C_Finalize + C_Initialize. N=0 means the
 *                           readers are empty from the start.
 *   FAKEP11_MECHS=a,b       mechanisms for C_GetMechanismList/C_GetMechanismInfo, each
 *                           NAME[:MIN[:MAX]] with NAME a CKM_ name (prefix optional) or a hex
 *                           number (0x...), MIN/MAX in bits. Default:
 *                           CKM_RSA_PKCS_KEY_PAIR_GEN:1024:2048,CKM_RSA_PKCS:1024:2048, so
 *                           rsa:3072 and every EC mechanism are "unsupported".
 *
 * An unknown flag or mechanism name makes C_Initialize fail with CKR_GENERAL_ERROR and a
 * message on stderr, so a typo in a test cannot pass silently.
 *
 * PIN counter: a wrong user PIN moves the token one step towards locked (no flag ->
 * count_low -> final_try -> locked); the correct PIN clears count_low and final_try. A real
 * token behaves alike, and it lets a test see that the agent retried a rejected PIN.
 *
 * C_SetPIN (not logged in, R/W session: the user PIN) checks the old PIN like C_Login does
 * (a wrong one moves the counter), takes a new PIN of 4 to 64 bytes and clears to_be_changed;
 * with NULL PINs on a protected_auth token the "PIN pad" succeeds. The change lasts for the
 * process.
 *
 * C_GenerateKeyPair checks the session, the mechanism list and the login state, then returns
 * CKR_FUNCTION_NOT_SUPPORTED. Every other function that is not listed in the table at the end
 * returns CKR_FUNCTION_NOT_SUPPORTED. C_CloseSession and C_CloseAllSessions release sessions
 * and return CKR_OK even after removal, so cleanup paths always work.
 *
 * Only C_GetFunctionList is exported; the module links against nothing but libc.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define FAKE_MAX_TOKENS   16
#define FAKE_MAX_SESSIONS 64
#define FAKE_MAX_MECHS    32
#define FAKE_SLOT_BASE    0x11UL
#define FAKE_MAX_PIN      64

#define DEFAULT_MECHS "CKM_RSA_PKCS_KEY_PAIR_GEN:1024:2048,CKM_RSA_PKCS:1024:2048"

struct fake_mech {
    CK_MECHANISM_TYPE type;
    CK_ULONG min_bits;
    CK_ULONG max_bits;
    CK_FLAGS flags;
};

struct fake_session {
    int used;
    unsigned int token;
    CK_FLAGS flags;
    int find_active;
};

struct fake_token {
    CK_FLAGS flags;
    int logged_in;
    CK_USER_TYPE user;
};

static struct {
    int initialized;
    unsigned int ntokens;
    char label[33];
    char pin[FAKE_MAX_PIN + 1];
    size_t pin_len;
    char so_pin[FAKE_MAX_PIN + 1];
    size_t so_pin_len;
    char log_path[4096];
    long remove_after;
    unsigned long tokeninfo_calls; /* successful C_GetTokenInfo calls since C_Initialize */
    struct fake_mech mechs[FAKE_MAX_MECHS];
    size_t nmechs;
    struct fake_token tokens[FAKE_MAX_TOKENS];
    struct fake_session sessions[FAKE_MAX_SESSIONS];
} g;

/* Set once the tokens have been pulled; deliberately survives C_Finalize. */
static int g_pulled;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static const struct {
    const char *name;
    CK_MECHANISM_TYPE type;
    CK_FLAGS flags;
} mech_names[] = {
#define SIGN_VERIFY (CKF_HW | CKF_SIGN | CKF_VERIFY)
#define EC_BITS     (CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS)
    {"CKM_RSA_PKCS_KEY_PAIR_GEN", CKM_RSA_PKCS_KEY_PAIR_GEN, CKF_HW | CKF_GENERATE_KEY_PAIR},
    {"CKM_RSA_PKCS", CKM_RSA_PKCS, SIGN_VERIFY | CKF_ENCRYPT | CKF_DECRYPT},
    {"CKM_RSA_X_509", CKM_RSA_X_509, SIGN_VERIFY | CKF_ENCRYPT | CKF_DECRYPT},
    {"CKM_RSA_PKCS_PSS", CKM_RSA_PKCS_PSS, SIGN_VERIFY},
    {"CKM_RSA_PKCS_OAEP", CKM_RSA_PKCS_OAEP, CKF_HW | CKF_ENCRYPT | CKF_DECRYPT},
    {"CKM_SHA256_RSA_PKCS", CKM_SHA256_RSA_PKCS, SIGN_VERIFY},
    {"CKM_SHA384_RSA_PKCS", CKM_SHA384_RSA_PKCS, SIGN_VERIFY},
    {"CKM_SHA512_RSA_PKCS", CKM_SHA512_RSA_PKCS, SIGN_VERIFY},
    {"CKM_SHA256_RSA_PKCS_PSS", CKM_SHA256_RSA_PKCS_PSS, SIGN_VERIFY},
    {"CKM_SHA384_RSA_PKCS_PSS", CKM_SHA384_RSA_PKCS_PSS, SIGN_VERIFY},
    {"CKM_SHA512_RSA_PKCS_PSS", CKM_SHA512_RSA_PKCS_PSS, SIGN_VERIFY},
    {"CKM_EC_KEY_PAIR_GEN", CKM_EC_KEY_PAIR_GEN, CKF_HW | CKF_GENERATE_KEY_PAIR | EC_BITS},
    {"CKM_ECDSA", CKM_ECDSA, SIGN_VERIFY | EC_BITS},
    {"CKM_ECDSA_SHA256", CKM_ECDSA_SHA256, SIGN_VERIFY | EC_BITS},
    {"CKM_ECDSA_SHA384", CKM_ECDSA_SHA384, SIGN_VERIFY | EC_BITS},
    {"CKM_ECDSA_SHA512", CKM_ECDSA_SHA512, SIGN_VERIFY | EC_BITS},
    {"CKM_EC_EDWARDS_KEY_PAIR_GEN", CKM_EC_EDWARDS_KEY_PAIR_GEN, CKF_HW | CKF_GENERATE_KEY_PAIR},
    {"CKM_EDDSA", CKM_EDDSA, SIGN_VERIFY},
    {"CKM_SHA256", CKM_SHA256, CKF_HW | CKF_DIGEST},
    {"CKM_SHA384", CKM_SHA384, CKF_HW | CKF_DIGEST},
    {"CKM_SHA512", CKM_SHA512, CKF_HW | CKF_DIGEST},
#undef SIGN_VERIFY
#undef EC_BITS
};

static const struct {
    const char *name;
    CK_FLAGS flag;
} flag_names[] = {
    {"final_try", CKF_USER_PIN_FINAL_TRY},
    {"locked", CKF_USER_PIN_LOCKED},
    {"to_be_changed", CKF_USER_PIN_TO_BE_CHANGED},
    {"count_low", CKF_USER_PIN_COUNT_LOW},
    {"protected_auth", CKF_PROTECTED_AUTHENTICATION_PATH},
    {"no_login_required", CKF_LOGIN_REQUIRED}, /* removes the flag, see parse_flags() */
};

/* Copies src into a blank-padded, not NUL-terminated field of n bytes. */
static void pad(CK_UTF8CHAR *dst, size_t n, const char *src)
{
    size_t len = strlen(src);

    memset(dst, ' ', n);
    memcpy(dst, src, len < n ? len : n);
}

static int token_removed(void)
{
    if (g.remove_after >= 0 && g.tokeninfo_calls >= (unsigned long)g.remove_after)
        g_pulled = 1;
    return g_pulled;
}

/* Returns the token index for a slot ID, or -1. */
static int slot_index(CK_SLOT_ID id)
{
    if (id < FAKE_SLOT_BASE || id >= FAKE_SLOT_BASE + g.ntokens)
        return -1;
    return (int)(id - FAKE_SLOT_BASE);
}

static const struct fake_mech *find_mech(CK_MECHANISM_TYPE type)
{
    size_t i;

    for (i = 0; i < g.nmechs; i++)
        if (g.mechs[i].type == type)
            return &g.mechs[i];
    return NULL;
}

/* Parses a decimal number; returns 0 on success. */
static int parse_ulong(const char *s, unsigned long max, unsigned long *ret)
{
    char *end = NULL;
    unsigned long v;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *ret = v;
    return 0;
}

/* Parses one "NAME[:MIN[:MAX]]" entry of FAKEP11_MECHS into *m. Returns 0 on success. */
static int parse_mech(char *entry, struct fake_mech *m)
{
    char *name = entry, *min = NULL, *max = NULL, *end = NULL;
    unsigned long v = 0;
    size_t i;

    min = strchr(name, ':');
    if (min != NULL) {
        *min++ = '\0';
        max = strchr(min, ':');
        if (max != NULL)
            *max++ = '\0';
    }
    memset(m, 0, sizeof(*m));
    if (strncmp(name, "0x", 2) == 0 || strncmp(name, "0X", 2) == 0) {
        errno = 0;
        v = strtoul(name + 2, &end, 16);
        if (errno != 0 || end == name + 2 || *end != '\0')
            return -1;
        m->type = v;
        m->flags = CKF_HW;
    } else {
        for (i = 0; i < sizeof(mech_names) / sizeof(mech_names[0]); i++) {
            const char *n = mech_names[i].name;

            if (strcmp(name, n) == 0 || strcmp(name, n + 4) == 0)
                break;
        }
        if (i == sizeof(mech_names) / sizeof(mech_names[0]))
            return -1;
        m->type = mech_names[i].type;
        m->flags = mech_names[i].flags;
    }
    if (min != NULL && parse_ulong(min, 1UL << 20, &v) < 0)
        return -1;
    m->min_bits = min != NULL ? v : 0;
    if (max != NULL && parse_ulong(max, 1UL << 20, &v) < 0)
        return -1;
    m->max_bits = max != NULL ? v : m->min_bits;
    return 0;
}

/* Fills g.mechs from a comma list. Returns 0 on success, -1 after printing why. */
static int parse_mechs(const char *list)
{
    char buf[2048];
    char *save = NULL, *tok;

    if (strlen(list) >= sizeof(buf)) {
        fprintf(stderr, "fakep11: FAKEP11_MECHS is too long\n");
        return -1;
    }
    memcpy(buf, list, strlen(list) + 1);
    g.nmechs = 0;
    for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char copy[256];

        if (g.nmechs == FAKE_MAX_MECHS) {
            fprintf(stderr, "fakep11: more than %d mechanisms in FAKEP11_MECHS\n", FAKE_MAX_MECHS);
            return -1;
        }
        snprintf(copy, sizeof(copy), "%s", tok);
        if (parse_mech(tok, &g.mechs[g.nmechs]) < 0) {
            fprintf(stderr, "fakep11: bad FAKEP11_MECHS entry \"%s\"\n", copy);
            return -1;
        }
        g.nmechs++;
    }
    return 0;
}

/* Returns the token flags for a FAKEP11_FLAGS list, or (CK_FLAGS)-1 after printing why. */
static CK_FLAGS parse_flags(const char *list)
{
    CK_FLAGS flags = CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED | CKF_LOGIN_REQUIRED;
    char buf[512];
    char *save = NULL, *tok;
    size_t i;

    if (strlen(list) >= sizeof(buf)) {
        fprintf(stderr, "fakep11: FAKEP11_FLAGS is too long\n");
        return (CK_FLAGS)-1;
    }
    memcpy(buf, list, strlen(list) + 1);
    for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        for (i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
            if (strcmp(tok, flag_names[i].name) == 0)
                break;
        if (i == sizeof(flag_names) / sizeof(flag_names[0])) {
            fprintf(stderr, "fakep11: unknown FAKEP11_FLAGS entry \"%s\"\n", tok);
            return (CK_FLAGS)-1;
        }
        if (flag_names[i].flag == CKF_LOGIN_REQUIRED)
            flags &= ~CKF_LOGIN_REQUIRED;
        else
            flags |= flag_names[i].flag;
    }
    return flags;
}

/* Copies an environment PIN into dst; returns 0, or -1 after printing why. */
static int read_pin(const char *var, const char *def, char *dst, size_t *ret_len)
{
    const char *v = getenv(var);
    size_t len;

    if (v == NULL)
        v = def;
    len = strlen(v);
    if (len > FAKE_MAX_PIN) {
        fprintf(stderr, "fakep11: %s is longer than %d bytes\n", var, FAKE_MAX_PIN);
        return -1;
    }
    memcpy(dst, v, len + 1);
    *ret_len = len;
    return 0;
}

/* Reads the FAKEP11_* environment into g. Returns 0, or -1 after printing why. */
static int load_config(void)
{
    const char *v;
    unsigned long n;
    CK_FLAGS flags;
    unsigned int i;

    memset(&g, 0, sizeof(g));
    v = getenv("FAKEP11_TOKENS");
    if (v == NULL || *v == '\0') {
        n = 1;
    } else if (parse_ulong(v, FAKE_MAX_TOKENS, &n) < 0) {
        fprintf(stderr, "fakep11: FAKEP11_TOKENS=\"%s\" is not a number from 0 to %d\n", v,
                FAKE_MAX_TOKENS);
        return -1;
    }
    g.ntokens = (unsigned int)n;

    v = getenv("FAKEP11_LABEL");
    snprintf(g.label, sizeof(g.label), "%s", v != NULL ? v : "fake-token");

    v = getenv("FAKEP11_FLAGS");
    flags = parse_flags(v != NULL ? v : "");
    if (flags == (CK_FLAGS)-1)
        return -1;
    for (i = 0; i < g.ntokens; i++)
        g.tokens[i].flags = flags;

    if (read_pin("FAKEP11_PIN", "1234", g.pin, &g.pin_len) < 0 ||
        read_pin("FAKEP11_SO_PIN", "12345678", g.so_pin, &g.so_pin_len) < 0)
        return -1;

    v = getenv("FAKEP11_LOG");
    if (v != NULL && *v != '\0') {
        if (strlen(v) >= sizeof(g.log_path)) {
            fprintf(stderr, "fakep11: FAKEP11_LOG is too long\n");
            return -1;
        }
        memcpy(g.log_path, v, strlen(v) + 1);
    }

    g.remove_after = -1;
    v = getenv("FAKEP11_REMOVE_AFTER");
    if (v != NULL && *v != '\0') {
        if (parse_ulong(v, 1000000000UL, &n) < 0) {
            fprintf(stderr, "fakep11: FAKEP11_REMOVE_AFTER=\"%s\" is not a number\n", v);
            return -1;
        }
        g.remove_after = (long)n;
    }

    v = getenv("FAKEP11_MECHS");
    return parse_mechs(v != NULL && *v != '\0' ? v : DEFAULT_MECHS);
}

/* Appends one line to FAKEP11_LOG, if set. Failures are reported on stderr and ignored. */
static void log_line(const char *line)
{
    size_t len = strlen(line);
    ssize_t n;
    int fd;

    if (g.log_path[0] == '\0')
        return;
    fd = open(g.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "fakep11: cannot open \"%s\": %s, ignoring\n", g.log_path, strerror(errno));
        return;
    }
    n = write(fd, line, len);
    if (n < 0 || (size_t)n != len)
        fprintf(stderr, "fakep11: cannot write \"%s\", ignoring\n", g.log_path);
    (void)close(fd);
}

static void log_login(CK_USER_TYPE user, const char *outcome)
{
    char line[128];

    if (user == CKU_USER)
        snprintf(line, sizeof(line), "C_Login user=user %s\n", outcome);
    else if (user == CKU_SO)
        snprintf(line, sizeof(line), "C_Login user=so %s\n", outcome);
    else if (user == CKU_CONTEXT_SPECIFIC)
        snprintf(line, sizeof(line), "C_Login user=context_specific %s\n", outcome);
    else
        snprintf(line, sizeof(line), "C_Login user=%lu %s\n", (unsigned long)user, outcome);
    log_line(line);
}

/* Looks up a live session. Returns CKR_OK and sets *ret, or the error to return. */
static CK_RV get_session(CK_SESSION_HANDLE h, struct fake_session **ret)
{
    if (!g.initialized)
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    if (h == 0 || h > FAKE_MAX_SESSIONS || !g.sessions[h - 1].used)
        return CKR_SESSION_HANDLE_INVALID;
    if (token_removed())
        return CKR_DEVICE_REMOVED;
    *ret = &g.sessions[h - 1];
    return CKR_OK;
}

/* Checks a slot-level call. Returns CKR_OK and sets *ret_index, or the error to return. */
static CK_RV get_token(CK_SLOT_ID slot, int *ret_index)
{
    int idx;

    if (!g.initialized)
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    idx = slot_index(slot);
    if (idx < 0)
        return CKR_SLOT_ID_INVALID;
    if (token_removed())
        return CKR_TOKEN_NOT_PRESENT;
    *ret_index = idx;
    return CKR_OK;
}

static unsigned long count_sessions(unsigned int token, int rw_only)
{
    unsigned long n = 0;
    size_t i;

    for (i = 0; i < FAKE_MAX_SESSIONS; i++)
        if (g.sessions[i].used && g.sessions[i].token == token &&
            (!rw_only || (g.sessions[i].flags & CKF_RW_SESSION)))
            n++;
    return n;
}

static CK_RV fake_Initialize(CK_VOID_PTR init_args)
{
    CK_RV rv = CKR_OK;

    if (init_args != NULL) {
        CK_C_INITIALIZE_ARGS *a = init_args;
        int nfn = (a->CreateMutex != NULL) + (a->DestroyMutex != NULL) + (a->LockMutex != NULL) +
                  (a->UnlockMutex != NULL);

        if (a->pReserved != NULL || (nfn != 0 && nfn != 4))
            return CKR_ARGUMENTS_BAD;
        if (nfn == 4 && !(a->flags & CKF_OS_LOCKING_OK))
            return CKR_CANT_LOCK;
    }
    pthread_mutex_lock(&g_lock);
    if (g.initialized)
        rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
    else if (load_config() < 0)
        rv = CKR_GENERAL_ERROR;
    else
        g.initialized = 1;
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
        memset(&g, 0, sizeof(g));
    pthread_mutex_unlock(&g_lock);
    return rv;
}

static CK_RV fake_Finalize(CK_VOID_PTR reserved_arg)
{
    CK_RV rv = CKR_OK;

    if (reserved_arg != NULL)
        return CKR_ARGUMENTS_BAD;
    pthread_mutex_lock(&g_lock);
    if (!g.initialized)
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
    else
        explicit_bzero(&g, sizeof(g));
    pthread_mutex_unlock(&g_lock);
    return rv;
}

static CK_RV fake_GetInfo(CK_INFO_PTR info)
{
    CK_RV rv = CKR_OK;

    pthread_mutex_lock(&g_lock);
    if (!g.initialized) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
    } else if (info == NULL) {
        rv = CKR_ARGUMENTS_BAD;
    } else {
        memset(info, 0, sizeof(*info));
        info->cryptokiVersion.major = 2;
        info->cryptokiVersion.minor = 40;
        pad(info->manufacturerID, sizeof(info->manufacturerID), "pkio-test");
        pad(info->libraryDescription, sizeof(info->libraryDescription), "pkio fake PKCS#11 module");
        info->libraryVersion.major = 0;
        info->libraryVersion.minor = 1;
    }
    pthread_mutex_unlock(&g_lock);
    return rv;
}

static CK_RV fake_GetSlotList(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
    CK_RV rv = CKR_OK;
    CK_ULONG n, i;

    pthread_mutex_lock(&g_lock);
    if (!g.initialized) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        goto out;
    }
    if (count == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    n = (token_present && token_removed()) ? 0 : g.ntokens;
    if (list != NULL) {
        if (*count < n) {
            rv = CKR_BUFFER_TOO_SMALL;
        } else {
            for (i = 0; i < n; i++)
                list[i] = FAKE_SLOT_BASE + i;
        }
    }
    *count = n;
out:
    pthread_mutex_unlock(&g_lock);
    return rv;
}

static CK_RV fake_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
    CK_RV rv = CKR_OK;
    char desc[64];
    int idx;

    pthread_mutex_lock(&g_lock);
    if (!g.initialized) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        goto out;
    }
    idx = slot_index(slot);
    if (idx < 0) {
        rv = CKR_SLOT_ID_INVALID;
        goto out;
    }
    if (info == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    memset(info, 0, sizeof(*info));
    snprintf(desc, sizeof(desc), "pkio fake reader %d", idx + 1);
    pad(info->slotDescription, sizeof(info->slotDescription), desc);
    pad(info->manufacturerID, sizeof(info->manufacturerID), "pkio-test");
    info->flags = CKF_REMOVABLE_DEVICE | CKF_HW_SLOT;
    if (!token_removed())
        info->flags |= CKF_TOKEN_PRESENT;
    info->hardwareVersion.major = 1;
    info->firmwareVersion.major = 1;
out:
    pthread_mutex_unlock(&g_lock);
    return rv;
}

static CK_RV fake_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    CK_RV rv;
    char serial[17];
    int idx = -1;

    pthread_mutex_lock(&g_lock);
    rv = get_token(slot, &idx);
    if (rv != CKR_OK)
        goto out;
    if (info == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    g.tokeninfo_calls++;
    memset(info, 0, sizeof(*info));
    pad(info->label, sizeof(info->label), g.label);
    pad(info->manufacturerID, sizeof(info->manufacturerID), "pkio-test");
    pad(info->model, sizeof(info->model), "fake");
    snprintf(serial, sizeof(serial), "FAKE%04d", idx + 1);
    pad(info->serialNumber, sizeof(info->serialNumber), serial);
    info->flags = g.tokens[idx].flags;
    info->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
    info->ulSessionCount = count_sessions((unsigned int)idx, 0);
    info->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
    info->ulRwSessionCount = count_sessions((unsigned int)idx, 1);
    info->ulMaxPinLen = FAKE_MAX_PIN;
    info->ulMinPinLen = 4;
    info->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
    info->hardwareVersion.major = 1;
    info->firmwareVersion.major = 1;
    pad(info->utcTime, sizeof(info->utcTime), "");
out:
    pthread_mutex_unlock(&g_lock);
    return rv;
}

static CK_RV fake_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
    CK_RV rv;
    int idx = -1;
    size_t i;

    pthread_mutex_lock(&g_lock);
    rv = get_token(slot, &idx);
    if (rv != CKR_OK)
        goto out;
    if (count == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    if (list != NULL) {
        if (*count < g.nmechs) {
            rv = CKR_BUFFER_TOO_SMALL;
        } else {
            for (i = 0; i < g.nmechs; i++)
                list[i] = g.mechs[i].type;
        }
    }
    *count = g.nmechs;
out:
    pthread_mutex_unlock(&g_lock);
    return rv;
}

static CK_RV fake_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type,
                                   CK_MECHANISM_INFO_PTR info)
{
    const struct fake_mech *m;
    CK_RV rv;
    int idx = -1;

    pthread_mutex_lock(&g_lock);
    rv = get_token(slot, &idx);
    if (rv != CKR_OK)
        goto out;
    if (info == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    m = find_mech(type);
    if (m == NULL) {
        rv = CKR_MECHANISM_INVALID;
        goto out;
    }
    info->ulMinKeySize = m->min_bits;
    info->ulMaxKeySize = m->max_bits;
    info->flags = m->flags;
out:
    pthread_mutex_unlock(&g_lock);
    return rv;
}

static CK_RV fake_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                              CK_SESSION_HANDLE_PTR ret_session)
{
    CK_RV rv;
    int idx = -1;
    size_t i;

    (void)app;
    (void)notify;
    pthread_mutex_lock(&g_lock);
    rv = get_token(slot, &idx);
    if (rv != CKR_OK)
        goto out;
    if (ret_session == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    if (!(flags & CKF_SERIAL_SESSION)) {
        rv = CKR_SESSION_PARALLEL_NOT_SUPPORTED;
        goto out;
    }
    if (g.tokens[idx].logged_in && g.tokens[idx].user == CKU_SO && !(flags & CKF_RW_SESSION)) {
        rv = CKR_SESSION_READ_WRITE_SO_EXISTS;
        goto out;
    }
    for (i = 0; i < FAKE_MAX_SESSIONS; i++)
        if (!g.sessions[i].used)
            break;
    if (i == FAKE_MAX_SESSIONS) {
        rv = CKR_SESSION_COUNT;
        goto out;
    }
    g.sessions[i].used = 1;
    g.sessions[i].token = (unsigned int)idx;
    g.sessions[i].flags = flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION);
    g.sessions[i].find_active = 0;
    *ret_session = (CK_SESSION_HANDLE)(i + 1);
out:
    pthread_mutex_unlock(&g_lock);
    return rv;
}

/* Frees session slot i; logs the token out when its last session goes (as the spec says). */
static void drop_session(size_t i)
{
    unsigned int token = g.sessions[i].token;

    memset(&g.sessions[i], 0, sizeof(g.sessions[i]));
    if (count_sessions(token, 0) == 0)
        g.tokens[token].logged_in = 0;
}

static CK_RV fake_CloseSession(CK_SESSION_HANDLE h)
{
    CK_RV rv = CKR_OK;

    pthread_mutex_lock(&g_lock);
    if (!g.initialized)
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
    else if (h == 0 || h > FAKE_MAX_SESSIONS || !g.sessions[h - 1].used)
        rv = CKR_SESSION_HANDLE_INVALID;
    else
        drop_session(h - 1);
    pthread_mutex_unlock(&g_lock);
    return rv;
}

static CK_RV fake_CloseAllSessions(CK_SLOT_ID slot)
{
    CK_RV rv = CKR_OK;
    int idx;
    size_t i;

    pthread_mutex_lock(&g_lock);
    if (!g.initialized) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        goto out;
    }
    idx = slot_index(slot);
    if (idx < 0) {
        rv = CKR_SLOT_ID_INVALID;
        goto out;
    }
    for (i = 0; i < FAKE_MAX_SESSIONS; i++)
        if (g.sessions[i].used && g.sessions[i].token == (unsigned int)idx)
            drop_session(i);
    g.tokens[idx].logged_in = 0;
out:
    pthread_mutex_unlock(&g_lock);
    return rv;
}

static CK_RV fake_GetSessionInfo(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info)
{
    struct fake_session *s = NULL;
    struct fake_token *t;
    CK_RV rv;
    int rw;

    pthread_mutex_lock(&g_lock);
    rv = get_session(h, &s);
    if (rv != CKR_OK)
        goto out;
    if (info == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    t = &g.tokens[s->token];
    rw = (s->flags & CKF_RW_SESSION) != 0;
    memset(info, 0, sizeof(*info));
    info->slotID = FAKE_SLOT_BASE + s->token;
    info->flags = s->flags;
    if (t->logged_in && t->user == CKU_SO)
        info->state = CKS_RW_SO_FUNCTIONS;
    else if (t->logged_in)
        info->state = rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
    else
        info->state = rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
out:
    pthread_mutex_unlock(&g_lock);
    return rv;
}

/* A wrong user PIN moves the token one step towards locked, as a retry counter would. */
static void pin_failed(struct fake_token *t)
{
    if (t->flags & CKF_USER_PIN_FINAL_TRY) {
        t->flags &= ~(CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW);
        t->flags |= CKF_USER_PIN_LOCKED;
    } else if (t->flags & CKF_USER_PIN_COUNT_LOW) {
        t->flags |= CKF_USER_PIN_FINAL_TRY;
    } else {
        t->flags |= CKF_USER_PIN_COUNT_LOW;
    }
}

/* A user login refused before the PIN is looked at: locked, or a PIN that must be changed. */
static CK_RV user_pin_state(const struct fake_token *t)
{
    if (t->flags & CKF_USER_PIN_LOCKED) {
        log_login(CKU_USER, "locked");
        return CKR_PIN_LOCKED;
    }
    if (t->flags & CKF_USER_PIN_TO_BE_CHANGED) {
        log_login(CKU_USER, "expired");
        return CKR_PIN_EXPIRED;
    }
    return CKR_OK;
}

static CK_RV fake_Login(CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin,
                        CK_ULONG pin_len)
{
    struct fake_session *s = NULL;
    struct fake_token *t;
    const char *want;
    size_t want_len;
    CK_RV rv;
    size_t i;

    pthread_mutex_lock(&g_lock);
    rv = get_session(h, &s);
    if (rv != CKR_OK)
        goto out;
    t = &g.tokens[s->token];
    if (user != CKU_USER && user != CKU_SO && user != CKU_CONTEXT_SPECIFIC) {
        rv = CKR_USER_TYPE_INVALID;
        goto out;
    }
    if (user == CKU_CONTEXT_SPECIFIC) {
        /* No operation here ever needs a context-specific login. */
        log_login(user, "unsupported");
        rv = CKR_OPERATION_NOT_INITIALIZED;
        goto out;
    }
    if (t->logged_in) {
        rv = t->user == user ? CKR_USER_ALREADY_LOGGED_IN : CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
        goto out;
    }
    if (user == CKU_SO) {
        for (i = 0; i < FAKE_MAX_SESSIONS; i++) {
            if (g.sessions[i].used && g.sessions[i].token == s->token &&
                !(g.sessions[i].flags & CKF_RW_SESSION)) {
                rv = CKR_SESSION_READ_ONLY_EXISTS;
                goto out;
            }
        }
    }
    rv = user == CKU_USER ? user_pin_state(t) : CKR_OK;
    if (rv != CKR_OK)
        goto out;
    if (pin == NULL) {
        if (t->flags & CKF_PROTECTED_AUTHENTICATION_PATH) {
            log_login(user, "pinpad");
            goto logged_in;
        }
        log_login(user, "nopin");
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    want = user == CKU_SO ? g.so_pin : g.pin;
    want_len = user == CKU_SO ? g.so_pin_len : g.pin_len;
    if (pin_len != want_len || memcmp(pin, want, want_len) != 0) {
        log_login(user, "incorrect");
        if (user == CKU_USER)
            pin_failed(t);
        rv = CKR_PIN_INCORRECT;
        goto out;
    }
    log_login(user, "ok");
logged_in:
    if (user == CKU_USER)
        t->flags &= ~(CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW);
    t->logged_in = 1;
    t->user = user;
out:
    pthread_mutex_unlock(&g_lock);
    return rv;
}

static void log_setpin(const char *outcome)
{
    char line[64];

    snprintf(line, sizeof(line), "C_SetPIN %s\n", outcome);
    log_line(line);
}

/* The checks of C_SetPIN for the user PIN; CKR_OK when old may be compared. */
static CK_RV setpin_check(const struct fake_session *s, const struct fake_token *t,
                          CK_UTF8CHAR_PTR old, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len)
{
    if (!(s->flags & CKF_RW_SESSION)) {
        log_setpin("readonly");
        return CKR_SESSION_READ_ONLY;
    }
    if (t->logged_in && t->user == CKU_SO)
        return CKR_FUNCTION_NOT_SUPPORTED; /* the SO PIN never changes here */
    if (t->flags & CKF_USER_PIN_LOCKED) {
        log_setpin("locked");
        return CKR_PIN_LOCKED;
    }
    if ((old == NULL) != (pin == NULL) ||
        (old == NULL && !(t->flags & CKF_PROTECTED_AUTHENTICATION_PATH))) {
        log_setpin("nopin");
        return CKR_ARGUMENTS_BAD;
    }
    if (pin != NULL && (pin_len < 4 || pin_len > FAKE_MAX_PIN)) {
        log_setpin("lenrange");
        return CKR_PIN_LEN_RANGE;
    }
    return CKR_OK;
}

static CK_RV fake_SetPIN(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR old, CK_ULONG old_len,
                         CK_UTF8CHAR_PTR pin, CK_ULONG pin_len)
{
    struct fake_session *s = NULL;
    struct fake_token *t;
    CK_RV rv;

    pthread_mutex_lock(&g_lock);
    rv = get_session(h, &s);
    if (rv != CKR_OK)
        goto out;
    t = &g.tokens[s->token];
    rv = setpin_check(s, t, old, pin, pin_len);
    if (rv != CKR_OK)
        goto out;
    if (old == NULL) {
        log_setpin("pinpad");
    } else if (old_len != g.pin_len || memcmp(old, g.pin, g.pin_len) != 0) {
        log_setpin("incorrect");
        pin_failed(t);
        rv = CKR_PIN_INCORRECT;
        goto out;
    } else {
        log_setpin("ok");
        memcpy(g.pin, pin, pin_len);
        g.pin[pin_len] = '\0';
        g.pin_len = pin_len;
    }
    t->flags &= ~(CKF_USER_PIN_TO_BE_CHANGED | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW);
out:
    pthread_mutex_unlock(&g_lock);
    return rv;
}

static CK_RV fake_Logout(CK_SESSION_HANDLE h)
{
    struct fake_session *s = NULL;
    CK_RV rv;

    pthread_mutex_lock(&g_lock);
    rv = get_session(h, &s);
    if (rv == CKR_OK) {
        if (!g.tokens[s->token].logged_in)
            rv = CKR_USER_NOT_LOGGED_IN;
        else
            g.tokens[s->token].logged_in = 0;
    }
    pthread_mutex_unlock(&g_lock);
    return rv;
}

static CK_RV fake_FindObjectsInit(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
    struct fake_session *s = NULL;
    CK_RV rv;

    pthread_mutex_lock(&g_lock);
    rv = get_session(h, &s);
    if (rv != CKR_OK)
        goto out;
    if (templ == NULL && count != 0)
        rv = CKR_ARGUMENTS_BAD;
    else if (s->find_active)
        rv = CKR_OPERATION_ACTIVE;
    else
        s->find_active = 1;
out:
    pthread_mutex_unlock(&g_lock);
    return rv;
}

static CK_RV fake_FindObjects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR objects, CK_ULONG max,
                              CK_ULONG_PTR ret_count)
{
    struct fake_session *s = NULL;
    CK_RV rv;

    pthread_mutex_lock(&g_lock);
    rv = get_session(h, &s);
    if (rv != CKR_OK)
        goto out;
    if (ret_count == NULL || (objects == NULL && max != 0))
        rv = CKR_ARGUMENTS_BAD;
    else if (!s->find_active)
        rv = CKR_OPERATION_NOT_INITIALIZED;
    else
        *ret_count = 0; /* this token holds no objects */
out:
    pthread_mutex_unlock(&g_lock);
    return rv;
}

static CK_RV fake_FindObjectsFinal(CK_SESSION_HANDLE h)
{
    struct fake_session *s = NULL;
    CK_RV rv;

    pthread_mutex_lock(&g_lock);
    rv = get_session(h, &s);
    if (rv == CKR_OK) {
        if (!s->find_active)
            rv = CKR_OPERATION_NOT_INITIALIZED;
        else
            s->find_active = 0;
    }
    pthread_mutex_unlock(&g_lock);
    return rv;
}

/*
 * Does the checks a real token would do first, then refuses: this module keeps no keys.
 * Returns CKR_MECHANISM_INVALID for a mechanism not in FAKEP11_MECHS.
 */
static CK_RV fake_GenerateKeyPair(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR pub,
                                  CK_ULONG npub, CK_ATTRIBUTE_PTR priv, CK_ULONG npriv,
                                  CK_OBJECT_HANDLE_PTR ret_pub, CK_OBJECT_HANDLE_PTR ret_priv)
{
    const struct fake_mech *m = NULL;
    struct fake_session *s = NULL;
    struct fake_token *t;
    CK_RV rv;

    pthread_mutex_lock(&g_lock);
    rv = get_session(h, &s);
    if (rv != CKR_OK)
        goto out;
    t = &g.tokens[s->token];
    if (mech != NULL)
        m = find_mech(mech->mechanism);
    if (mech == NULL || (pub == NULL && npub != 0) || (priv == NULL && npriv != 0) ||
        ret_pub == NULL || ret_priv == NULL)
        rv = CKR_ARGUMENTS_BAD;
    else if (m == NULL || !(m->flags & CKF_GENERATE_KEY_PAIR))
        rv = CKR_MECHANISM_INVALID;
    else if (!(s->flags & CKF_RW_SESSION))
        rv = CKR_SESSION_READ_ONLY;
    else if ((t->flags & CKF_LOGIN_REQUIRED) && !t->logged_in)
        rv = CKR_USER_NOT_LOGGED_IN;
    else
        rv = CKR_FUNCTION_NOT_SUPPORTED;
out:
    pthread_mutex_unlock(&g_lock);
    return rv;
}

/*
 * Everything below returns CKR_FUNCTION_NOT_SUPPORTED. Each stub has the exact prototype of
 * its CK_FUNCTION_LIST slot, so the compiler checks the table.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#define STUB(name, args)                                                                           \
    static CK_RV name args                                                                         \
    {                                                                                              \
        return CKR_FUNCTION_NOT_SUPPORTED;                                                         \
    }
typedef CK_SESSION_HANDLE SH;
typedef CK_OBJECT_HANDLE OH;
typedef CK_BYTE_PTR BP;
typedef CK_ULONG_PTR UP;
STUB(fake_InitToken, (CK_SLOT_ID s, CK_UTF8CHAR_PTR p, CK_ULONG n, CK_UTF8CHAR_PTR l))
STUB(fake_InitPIN, (SH h, CK_UTF8CHAR_PTR p, CK_ULONG n))
STUB(fake_GetOperationState, (SH h, BP b, UP n))
STUB(fake_SetOperationState, (SH h, BP b, CK_ULONG n, OH e, OH a))
STUB(fake_CreateObject, (SH h, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR o))
STUB(fake_CopyObject, (SH h, OH o, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR r))
STUB(fake_DestroyObject, (SH h, OH o))
STUB(fake_GetObjectSize, (SH h, OH o, UP n))
STUB(fake_GetAttributeValue, (SH h, OH o, CK_ATTRIBUTE_PTR t, CK_ULONG n))
STUB(fake_SetAttributeValue, (SH h, OH o, CK_ATTRIBUTE_PTR t, CK_ULONG n))
STUB(fake_EncryptInit, (SH h, CK_MECHANISM_PTR m, OH k))
STUB(fake_Encrypt, (SH h, BP i, CK_ULONG n, BP o, UP on))
STUB(fake_EncryptUpdate, (SH h, BP i, CK_ULONG n, BP o, UP on))
STUB(fake_EncryptFinal, (SH h, BP o, UP on))
STUB(fake_DecryptInit, (SH h, CK_MECHANISM_PTR m, OH k))
STUB(fake_Decrypt, (SH h, BP i, CK_ULONG n, BP o, UP on))
STUB(fake_DecryptUpdate, (SH h, BP i, CK_ULONG n, BP o, UP on))
STUB(fake_DecryptFinal, (SH h, BP o, UP on))
STUB(fake_DigestInit, (SH h, CK_MECHANISM_PTR m))
STUB(fake_Digest, (SH h, BP i, CK_ULONG n, BP o, UP on))
STUB(fake_DigestUpdate, (SH h, BP i, CK_ULONG n))
STUB(fake_DigestKey, (SH h, OH k))
STUB(fake_DigestFinal, (SH h, BP o, UP on))
STUB(fake_SignInit, (SH h, CK_MECHANISM_PTR m, OH k))
STUB(fake_Sign, (SH h, BP i, CK_ULONG n, BP o, UP on))
STUB(fake_SignUpdate, (SH h, BP i, CK_ULONG n))
STUB(fake_SignFinal, (SH h, BP o, UP on))
STUB(fake_SignRecoverInit, (SH h, CK_MECHANISM_PTR m, OH k))
STUB(fake_SignRecover, (SH h, BP i, CK_ULONG n, BP o, UP on))
STUB(fake_VerifyInit, (SH h, CK_MECHANISM_PTR m, OH k))
STUB(fake_Verify, (SH h, BP i, CK_ULONG n, BP s, CK_ULONG sn))
STUB(fake_VerifyUpdate, (SH h, BP i, CK_ULONG n))
STUB(fake_VerifyFinal, (SH h, BP s, CK_ULONG sn))
STUB(fake_VerifyRecoverInit, (SH h, CK_MECHANISM_PTR m, OH k))
STUB(fake_VerifyRecover, (SH h, BP s, CK_ULONG sn, BP o, UP on))
STUB(fake_DigestEncryptUpdate, (SH h, BP i, CK_ULONG n, BP o, UP on))
STUB(fake_DecryptDigestUpdate, (SH h, BP i, CK_ULONG n, BP o, UP on))
STUB(fake_SignEncryptUpdate, (SH h, BP i, CK_ULONG n, BP o, UP on))
STUB(fake_DecryptVerifyUpdate, (SH h, BP i, CK_ULONG n, BP o, UP on))
STUB(fake_GenerateKey,
     (SH h, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR k))
STUB(fake_WrapKey, (SH h, CK_MECHANISM_PTR m, OH w, OH k, BP o, UP on))
STUB(fake_UnwrapKey, (SH h, CK_MECHANISM_PTR m, OH w, BP i, CK_ULONG n, CK_ATTRIBUTE_PTR t,
                      CK_ULONG tn, CK_OBJECT_HANDLE_PTR k))
STUB(fake_DeriveKey,
     (SH h, CK_MECHANISM_PTR m, OH b, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR k))
STUB(fake_SeedRandom, (SH h, BP b, CK_ULONG n))
STUB(fake_GenerateRandom, (SH h, BP b, CK_ULONG n))
STUB(fake_GetFunctionStatus, (SH h))
STUB(fake_CancelFunction, (SH h))
STUB(fake_WaitForSlotEvent, (CK_FLAGS f, CK_SLOT_ID_PTR s, CK_VOID_PTR r))
#undef STUB
#pragma GCC diagnostic pop

static CK_RV fake_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ret_list);

static CK_FUNCTION_LIST fake_functions = {
    .version = {2, 40},
    .C_Initialize = fake_Initialize,
    .C_Finalize = fake_Finalize,
    .C_GetInfo = fake_GetInfo,
    .C_GetFunctionList = fake_GetFunctionList,
    .C_GetSlotList = fake_GetSlotList,
    .C_GetSlotInfo = fake_GetSlotInfo,
    .C_GetTokenInfo = fake_GetTokenInfo,
    .C_GetMechanismList = fake_GetMechanismList,
    .C_GetMechanismInfo = fake_GetMechanismInfo,
    .C_InitToken = fake_InitToken,
    .C_InitPIN = fake_InitPIN,
    .C_SetPIN = fake_SetPIN,
    .C_OpenSession = fake_OpenSession,
    .C_CloseSession = fake_CloseSession,
    .C_CloseAllSessions = fake_CloseAllSessions,
    .C_GetSessionInfo = fake_GetSessionInfo,
    .C_GetOperationState = fake_GetOperationState,
    .C_SetOperationState = fake_SetOperationState,
    .C_Login = fake_Login,
    .C_Logout = fake_Logout,
    .C_CreateObject = fake_CreateObject,
    .C_CopyObject = fake_CopyObject,
    .C_DestroyObject = fake_DestroyObject,
    .C_GetObjectSize = fake_GetObjectSize,
    .C_GetAttributeValue = fake_GetAttributeValue,
    .C_SetAttributeValue = fake_SetAttributeValue,
    .C_FindObjectsInit = fake_FindObjectsInit,
    .C_FindObjects = fake_FindObjects,
    .C_FindObjectsFinal = fake_FindObjectsFinal,
    .C_EncryptInit = fake_EncryptInit,
    .C_Encrypt = fake_Encrypt,
    .C_EncryptUpdate = fake_EncryptUpdate,
    .C_EncryptFinal = fake_EncryptFinal,
    .C_DecryptInit = fake_DecryptInit,
    .C_Decrypt = fake_Decrypt,
    .C_DecryptUpdate = fake_DecryptUpdate,
    .C_DecryptFinal = fake_DecryptFinal,
    .C_DigestInit = fake_DigestInit,
    .C_Digest = fake_Digest,
    .C_DigestUpdate = fake_DigestUpdate,
    .C_DigestKey = fake_DigestKey,
    .C_DigestFinal = fake_DigestFinal,
    .C_SignInit = fake_SignInit,
    .C_Sign = fake_Sign,
    .C_SignUpdate = fake_SignUpdate,
    .C_SignFinal = fake_SignFinal,
    .C_SignRecoverInit = fake_SignRecoverInit,
    .C_SignRecover = fake_SignRecover,
    .C_VerifyInit = fake_VerifyInit,
    .C_Verify = fake_Verify,
    .C_VerifyUpdate = fake_VerifyUpdate,
    .C_VerifyFinal = fake_VerifyFinal,
    .C_VerifyRecoverInit = fake_VerifyRecoverInit,
    .C_VerifyRecover = fake_VerifyRecover,
    .C_DigestEncryptUpdate = fake_DigestEncryptUpdate,
    .C_DecryptDigestUpdate = fake_DecryptDigestUpdate,
    .C_SignEncryptUpdate = fake_SignEncryptUpdate,
    .C_DecryptVerifyUpdate = fake_DecryptVerifyUpdate,
    .C_GenerateKey = fake_GenerateKey,
    .C_GenerateKeyPair = fake_GenerateKeyPair,
    .C_WrapKey = fake_WrapKey,
    .C_UnwrapKey = fake_UnwrapKey,
    .C_DeriveKey = fake_DeriveKey,
    .C_SeedRandom = fake_SeedRandom,
    .C_GenerateRandom = fake_GenerateRandom,
    .C_GetFunctionStatus = fake_GetFunctionStatus,
    .C_CancelFunction = fake_CancelFunction,
    .C_WaitForSlotEvent = fake_WaitForSlotEvent,
};

static CK_RV fake_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ret_list)
{
    if (ret_list == NULL)
        return CKR_ARGUMENTS_BAD;
    *ret_list = &fake_functions;
    return CKR_OK;
}

/* The module's only exported symbol. */
CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ret_list)
{
    return fake_GetFunctionList(ret_list);
}

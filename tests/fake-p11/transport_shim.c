/*
 * transport_shim.c - a pass-through PKCS#11 module that makes a real token look like a card fresh
 * from its issuer: its user PIN is a transport PIN that must be changed before use.
 *
 * Why it exists: SoftHSM2 cannot report CKF_USER_PIN_TO_BE_CHANGED, and the fake module
 * (fakep11.c) does no cryptography. Behind this shim a SoftHSM2 token goes through the whole
 * first-use flow: the PIN change, then key generation, signing and certificate write-back.
 *
 * Environment (read when the module is first used):
 *
 *   TRANSPORT_SHIM_MODULE=PATH  the real module (e.g. /usr/lib/softhsm/libsofthsm2.so); every
 *                               call is forwarded to it. Required.
 *   TRANSPORT_SHIM_STATE=FILE   the tokens whose PIN was changed through the shim, one serial a
 *                               line; appended to by C_SetPIN, so the change persists across
 *                               processes (the token's real PIN changed too). Required; a
 *                               missing file means no token was changed yet.
 *   TRANSPORT_SHIM_SERIALS=a,b  only these serials have a transport PIN (default: every token
 *                               with an initialised user PIN).
 *
 * What differs from the real module, for a token with a transport PIN not yet changed:
 *   - C_GetTokenInfo adds CKF_USER_PIN_TO_BE_CHANGED;
 *   - C_Login as CKU_USER returns CKR_PIN_EXPIRED without asking the real module (as a card that
 *     requires a change does; no try is spent);
 *   - C_SetPIN is forwarded; when the real module accepts it in a session that is not the SO's
 *     (so it changed the user PIN), the token's serial is appended to the state file.
 * Everything else is the real module's own function. Only C_GetFunctionList is exported.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST *real;
static CK_FUNCTION_LIST shim;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;

/* A blank-padded serial number as a C string. */
static void serial_of(const CK_TOKEN_INFO *ti, char out[17])
{
    size_t n = sizeof(ti->serialNumber);

    memcpy(out, ti->serialNumber, n);
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\0'))
        out[--n] = '\0';
}

/* Is serial one of the comma-separated list? */
static int listed(const char *list, const char *serial)
{
    size_t n = strlen(serial);

    for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, serial, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

/* Was this token's PIN changed through the shim (in any process)? */
static int changed(const char *serial)
{
    const char *path = getenv("TRANSPORT_SHIM_STATE");
    char line[64];
    int found = 0;
    FILE *f;

    if (!path)
        return 0;
    pthread_mutex_lock(&state_lock);
    f = fopen(path, "re");
    while (f && !found && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        found = strcmp(line, serial) == 0;
    }
    if (f)
        fclose(f);
    pthread_mutex_unlock(&state_lock);
    return found;
}

static void mark_changed(const char *serial)
{
    const char *path = getenv("TRANSPORT_SHIM_STATE");
    char line[32];
    int fd, n;

    if (!path)
        return;
    n = snprintf(line, sizeof(line), "%s\n", serial);
    pthread_mutex_lock(&state_lock);
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, line, (size_t)n) != n)
        fprintf(stderr, "transport_shim: cannot record %s in %s: %s\n", serial, path,
                strerror(errno));
    if (fd >= 0)
        close(fd);
    pthread_mutex_unlock(&state_lock);
}

/* Does this token (by its info) still have its transport PIN? */
static int transport(const CK_TOKEN_INFO *ti)
{
    const char *only = getenv("TRANSPORT_SHIM_SERIALS");
    char serial[17];

    if (!(ti->flags & CKF_USER_PIN_INITIALIZED))
        return 0;
    serial_of(ti, serial);
    if (only && !listed(only, serial))
        return 0;
    return !changed(serial);
}

/* The token info of the slot a session belongs to. */
static CK_RV session_token(CK_SESSION_HANDLE h, CK_SESSION_INFO *si, CK_TOKEN_INFO *ti)
{
    CK_RV rv = real->C_GetSessionInfo(h, si);

    if (rv != CKR_OK)
        return rv;
    return real->C_GetTokenInfo(si->slotID, ti);
}

static CK_RV shim_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    CK_RV rv = real->C_GetTokenInfo(slot, info);

    if (rv == CKR_OK && transport(info))
        info->flags |= CKF_USER_PIN_TO_BE_CHANGED;
    return rv;
}

static CK_RV shim_Login(CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin,
                        CK_ULONG pin_len)
{
    CK_SESSION_INFO si;
    CK_TOKEN_INFO ti;

    if (user == CKU_USER && session_token(h, &si, &ti) == CKR_OK && transport(&ti))
        return CKR_PIN_EXPIRED;
    return real->C_Login(h, user, pin, pin_len);
}

static CK_RV shim_SetPIN(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR old, CK_ULONG old_len,
                         CK_UTF8CHAR_PTR pin, CK_ULONG pin_len)
{
    CK_SESSION_INFO si;
    CK_TOKEN_INFO ti;
    CK_RV rv, qrv;
    char serial[17];

    qrv = session_token(h, &si, &ti); /* before: the state tells whose PIN changes */
    rv = real->C_SetPIN(h, old, old_len, pin, pin_len);
    if (rv == CKR_OK && qrv == CKR_OK && si.state != CKS_RW_SO_FUNCTIONS) {
        serial_of(&ti, serial);
        if (!changed(serial))
            mark_changed(serial);
    }
    return rv;
}

static CK_RV shim_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ret);

static void load(void)
{
    const char *path = getenv("TRANSPORT_SHIM_MODULE");
    CK_C_GetFunctionList get = NULL;
    CK_FUNCTION_LIST *list = NULL;
    void *dl;

    if (!path || !getenv("TRANSPORT_SHIM_STATE")) {
        fprintf(stderr, "transport_shim: set TRANSPORT_SHIM_MODULE and TRANSPORT_SHIM_STATE\n");
        return;
    }
    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL); /* never closed: the process may keep using it */
    if (!dl) {
        fprintf(stderr, "transport_shim: %s\n", dlerror());
        return;
    }
    *(void **)&get = dlsym(dl, "C_GetFunctionList");
    if (!get || get(&list) != CKR_OK || !list) {
        fprintf(stderr, "transport_shim: %s is not a PKCS#11 module\n", path);
        return;
    }
    shim = *list;
    shim.C_GetFunctionList = shim_GetFunctionList;
    shim.C_GetTokenInfo = shim_GetTokenInfo;
    shim.C_Login = shim_Login;
    shim.C_SetPIN = shim_SetPIN;
    real = list;
}

static CK_RV shim_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ret)
{
    if (ret == NULL)
        return CKR_ARGUMENTS_BAD;
    pthread_once(&load_once, load);
    if (!real)
        return CKR_GENERAL_ERROR;
    *ret = &shim;
    return CKR_OK;
}

/* The module's only exported symbol. */
CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ret)
{
    return shim_GetFunctionList(ret);
}

/*
 * fakep11_check.c - checks libfakep11.so call by call through its function list, for the
 * behaviour pkcs11-tool cannot show: buffer sizing, blank padding, session states, the PIN
 * counter, the login log, token removal and configuration errors.
 *
 * Usage: fakep11_check MODULE LOGFILE. Exit status 0 when every check passed.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

static int failures;
static CK_FUNCTION_LIST_PTR f;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

#define CHECK_RV(call, want)                                                                       \
    do {                                                                                           \
        CK_RV rv_ = (call);                                                                        \
        if (rv_ != (CK_RV)(want)) {                                                                \
            fprintf(stderr, "%s:%d: %s returned 0x%lx, expected %s (0x%lx)\n", __FILE__, __LINE__, \
                    #call, (unsigned long)rv_, #want, (unsigned long)(want));                      \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* Returns 1 if the n-byte field is exactly s followed by blanks. */
static int padded_eq(const CK_UTF8CHAR *field, size_t n, const char *s)
{
    size_t len = strlen(s), i;

    if (len > n || memcmp(field, s, len) != 0)
        return 0;
    for (i = len; i < n; i++)
        if (field[i] != ' ')
            return 0;
    return 1;
}

static void env(const char *tokens, const char *flags, const char *remove, const char *mechs)
{
    const char *names[] = {"FAKEP11_TOKENS", "FAKEP11_FLAGS", "FAKEP11_REMOVE_AFTER",
                           "FAKEP11_MECHS"};
    const char *values[] = {tokens, flags, remove, mechs};
    size_t i;

    for (i = 0; i < 4; i++) {
        if (values[i] == NULL)
            unsetenv(names[i]);
        else
            setenv(names[i], values[i], 1);
    }
}

static CK_FLAGS token_flags(CK_SLOT_ID slot)
{
    CK_TOKEN_INFO ti;

    memset(&ti, 0, sizeof(ti));
    CHECK_RV(f->C_GetTokenInfo(slot, &ti), CKR_OK);
    return ti.flags;
}

static CK_RV login(CK_SESSION_HANDLE s, const char *pin)
{
    char buf[64];

    if (pin == NULL)
        return f->C_Login(s, CKU_USER, NULL, 0);
    snprintf(buf, sizeof(buf), "%s", pin);
    return f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)buf, strlen(buf));
}

static void check_defaults(void)
{
    CK_INFO info;
    CK_SLOT_ID slots[4];
    CK_ULONG n;
    CK_TOKEN_INFO ti;
    CK_SLOT_INFO si;
    CK_MECHANISM_TYPE mechs[8];
    CK_MECHANISM_INFO mi;
    CK_SESSION_HANDLE s = 0, ro = 0;
    CK_SESSION_INFO sess;
    CK_OBJECT_HANDLE obj[4], pub = 0, priv = 0;
    CK_MECHANISM rsa = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_MECHANISM ec = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_MECHANISM sign = {CKM_RSA_PKCS, NULL, 0};
    const CK_FLAGS base = CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED | CKF_LOGIN_REQUIRED;

    env(NULL, NULL, NULL, NULL);
    CHECK_RV(f->C_GetSlotList(CK_FALSE, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED);
    CHECK_RV(f->C_Initialize(NULL), CKR_OK);
    CHECK_RV(f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);

    CHECK_RV(f->C_GetInfo(&info), CKR_OK);
    CHECK(info.cryptokiVersion.major == 2 && info.cryptokiVersion.minor == 40);
    CHECK(padded_eq(info.manufacturerID, sizeof(info.manufacturerID), "pkio-test"));

    CHECK_RV(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
    CHECK(n == 1);
    n = 0;
    CHECK_RV(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_BUFFER_TOO_SMALL);
    CHECK(n == 1);
    n = 4;
    CHECK_RV(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    CHECK(n == 1 && slots[0] == 0x11);
    CHECK_RV(f->C_GetSlotInfo(0, &si), CKR_SLOT_ID_INVALID);
    CHECK_RV(f->C_GetSlotInfo(0x11, &si), CKR_OK);
    CHECK(si.flags & CKF_TOKEN_PRESENT);

    CHECK_RV(f->C_GetTokenInfo(0x11, &ti), CKR_OK);
    CHECK(padded_eq(ti.label, sizeof(ti.label), "fake-token"));
    CHECK(padded_eq(ti.serialNumber, sizeof(ti.serialNumber), "FAKE0001"));
    CHECK(padded_eq(ti.model, sizeof(ti.model), "fake"));
    CHECK(padded_eq(ti.manufacturerID, sizeof(ti.manufacturerID), "pkio-test"));
    CHECK(ti.flags == base);

    CHECK_RV(f->C_GetMechanismList(0x11, NULL, &n), CKR_OK);
    CHECK(n == 2);
    n = 1;
    CHECK_RV(f->C_GetMechanismList(0x11, mechs, &n), CKR_BUFFER_TOO_SMALL);
    n = 8;
    CHECK_RV(f->C_GetMechanismList(0x11, mechs, &n), CKR_OK);
    CHECK(n == 2 && mechs[0] == CKM_RSA_PKCS_KEY_PAIR_GEN && mechs[1] == CKM_RSA_PKCS);
    CHECK_RV(f->C_GetMechanismInfo(0x11, CKM_RSA_PKCS_KEY_PAIR_GEN, &mi), CKR_OK);
    CHECK(mi.ulMinKeySize == 1024 && mi.ulMaxKeySize == 2048);
    CHECK(mi.flags & CKF_GENERATE_KEY_PAIR);
    CHECK_RV(f->C_GetMechanismInfo(0x11, CKM_EC_KEY_PAIR_GEN, &mi), CKR_MECHANISM_INVALID);

    CHECK_RV(f->C_OpenSession(0x11, CKF_RW_SESSION, NULL, NULL, &s),
             CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    CHECK_RV(f->C_OpenSession(0x11, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_OK);
    CHECK_RV(f->C_OpenSession(0x11, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
    CHECK(s != 0 && ro != 0 && s != ro);
    CHECK_RV(f->C_GetTokenInfo(0x11, &ti), CKR_OK);
    CHECK(ti.ulSessionCount == 2 && ti.ulRwSessionCount == 1);
    CHECK_RV(f->C_GetSessionInfo(s, &sess), CKR_OK);
    CHECK(sess.state == CKS_RW_PUBLIC_SESSION && sess.slotID == 0x11);
    CHECK_RV(f->C_GenerateKeyPair(s, &rsa, NULL, 0, NULL, 0, &pub, &priv), CKR_USER_NOT_LOGGED_IN);

    /* The PIN counter: count_low, then final_try; the right PIN clears both. */
    CHECK_RV(login(s, "0000"), CKR_PIN_INCORRECT);
    CHECK(token_flags(0x11) == (base | CKF_USER_PIN_COUNT_LOW));
    CHECK_RV(login(s, "12345"), CKR_PIN_INCORRECT);
    CHECK(token_flags(0x11) == (base | CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY));
    CHECK_RV(login(s, NULL), CKR_ARGUMENTS_BAD);
    CHECK_RV(login(s, "1234"), CKR_OK);
    CHECK(token_flags(0x11) == base);
    CHECK_RV(login(s, "1234"), CKR_USER_ALREADY_LOGGED_IN);
    CHECK_RV(f->C_GetSessionInfo(s, &sess), CKR_OK);
    CHECK(sess.state == CKS_RW_USER_FUNCTIONS);
    CHECK_RV(f->C_GetSessionInfo(ro, &sess), CKR_OK);
    CHECK(sess.state == CKS_RO_USER_FUNCTIONS);

    CHECK_RV(f->C_GenerateKeyPair(s, &rsa, NULL, 0, NULL, 0, &pub, &priv),
             CKR_FUNCTION_NOT_SUPPORTED);
    CHECK_RV(f->C_GenerateKeyPair(s, &ec, NULL, 0, NULL, 0, &pub, &priv), CKR_MECHANISM_INVALID);
    CHECK_RV(f->C_GenerateKeyPair(ro, &rsa, NULL, 0, NULL, 0, &pub, &priv), CKR_SESSION_READ_ONLY);
    CHECK_RV(f->C_SignInit(s, &sign, 1), CKR_FUNCTION_NOT_SUPPORTED);

    CHECK_RV(f->C_FindObjects(s, obj, 4, &n), CKR_OPERATION_NOT_INITIALIZED);
    CHECK_RV(f->C_FindObjectsInit(s, NULL, 0), CKR_OK);
    CHECK_RV(f->C_FindObjectsInit(s, NULL, 0), CKR_OPERATION_ACTIVE);
    n = 99;
    CHECK_RV(f->C_FindObjects(s, obj, 4, &n), CKR_OK);
    CHECK(n == 0);
    CHECK_RV(f->C_FindObjectsFinal(s), CKR_OK);
    CHECK_RV(f->C_FindObjectsFinal(s), CKR_OPERATION_NOT_INITIALIZED);

    CHECK_RV(f->C_Logout(s), CKR_OK);
    CHECK_RV(f->C_Logout(s), CKR_USER_NOT_LOGGED_IN);
    CHECK_RV(f->C_CloseSession(s), CKR_OK);
    CHECK_RV(f->C_CloseSession(s), CKR_SESSION_HANDLE_INVALID);
    CHECK_RV(f->C_GetSessionInfo(ro, &sess), CKR_OK);
    CHECK(sess.state == CKS_RO_PUBLIC_SESSION);
    CHECK_RV(f->C_CloseAllSessions(0x11), CKR_OK);
    CHECK_RV(f->C_GetSessionInfo(ro, &sess), CKR_SESSION_HANDLE_INVALID);
    CHECK_RV(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, slots, NULL), CKR_FUNCTION_NOT_SUPPORTED);

    CHECK_RV(f->C_Finalize(NULL), CKR_OK);
    CHECK_RV(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static void check_final_try_and_pinpad(void)
{
    CK_SESSION_HANDLE s = 0;

    env(NULL, "final_try", NULL, NULL);
    CHECK_RV(f->C_Initialize(NULL), CKR_OK);
    CHECK(token_flags(0x11) & CKF_USER_PIN_FINAL_TRY);
    CHECK_RV(f->C_OpenSession(0x11, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
    CHECK_RV(login(s, "9999"), CKR_PIN_INCORRECT);
    CHECK(token_flags(0x11) & CKF_USER_PIN_LOCKED);
    CHECK(!(token_flags(0x11) & CKF_USER_PIN_FINAL_TRY));
    CHECK_RV(login(s, "1234"), CKR_PIN_LOCKED);
    CHECK_RV(f->C_Finalize(NULL), CKR_OK);

    env(NULL, "protected_auth,no_login_required", NULL, NULL);
    CHECK_RV(f->C_Initialize(NULL), CKR_OK);
    CHECK(token_flags(0x11) ==
          (CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED | CKF_PROTECTED_AUTHENTICATION_PATH));
    CHECK_RV(f->C_OpenSession(0x11, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
    CHECK_RV(login(s, NULL), CKR_OK);
    CHECK_RV(f->C_Finalize(NULL), CKR_OK);
}

static void check_two_tokens(void)
{
    CK_SLOT_ID slots[4];
    CK_ULONG n = 4;
    CK_TOKEN_INFO a, b;
    CK_SESSION_HANDLE s1 = 0, s2 = 0;
    CK_SESSION_INFO si;

    env("2", NULL, NULL, NULL);
    CHECK_RV(f->C_Initialize(NULL), CKR_OK);
    CHECK_RV(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    CHECK(n == 2 && slots[0] == 0x11 && slots[1] == 0x12);
    CHECK_RV(f->C_GetTokenInfo(0x11, &a), CKR_OK);
    CHECK_RV(f->C_GetTokenInfo(0x12, &b), CKR_OK);
    CHECK(memcmp(a.label, b.label, sizeof(a.label)) == 0);
    CHECK(padded_eq(b.serialNumber, sizeof(b.serialNumber), "FAKE0002"));
    CHECK_RV(f->C_OpenSession(0x11, CKF_SERIAL_SESSION, NULL, NULL, &s1), CKR_OK);
    CHECK_RV(f->C_OpenSession(0x12, CKF_SERIAL_SESSION, NULL, NULL, &s2), CKR_OK);
    CHECK_RV(login(s1, "1234"), CKR_OK);
    CHECK_RV(f->C_GetSessionInfo(s2, &si), CKR_OK);
    CHECK(si.state == CKS_RO_PUBLIC_SESSION && si.slotID == 0x12);
    CHECK_RV(f->C_Finalize(NULL), CKR_OK);

    env("0", NULL, NULL, NULL);
    CHECK_RV(f->C_Initialize(NULL), CKR_OK);
    CHECK_RV(f->C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK);
    CHECK(n == 0);
    CHECK_RV(f->C_Finalize(NULL), CKR_OK);
}

static void check_mechs_and_errors(void)
{
    CK_MECHANISM_INFO mi;
    CK_ULONG n;

    env(NULL, NULL, NULL, "EC_KEY_PAIR_GEN:256:521,CKM_ECDSA,0x80001234");
    CHECK_RV(f->C_Initialize(NULL), CKR_OK);
    CHECK_RV(f->C_GetMechanismList(0x11, NULL, &n), CKR_OK);
    CHECK(n == 3);
    CHECK_RV(f->C_GetMechanismInfo(0x11, CKM_EC_KEY_PAIR_GEN, &mi), CKR_OK);
    CHECK(mi.ulMinKeySize == 256 && mi.ulMaxKeySize == 521);
    CHECK_RV(f->C_GetMechanismInfo(0x11, 0x80001234UL, &mi), CKR_OK);
    CHECK_RV(f->C_GetMechanismInfo(0x11, CKM_RSA_PKCS_KEY_PAIR_GEN, &mi), CKR_MECHANISM_INVALID);
    CHECK_RV(f->C_Finalize(NULL), CKR_OK);

    fprintf(stderr, "(four fakep11 configuration errors expected below)\n");
    env(NULL, "final_try,bogus", NULL, NULL);
    CHECK_RV(f->C_Initialize(NULL), CKR_GENERAL_ERROR);
    env("17", NULL, NULL, NULL);
    CHECK_RV(f->C_Initialize(NULL), CKR_GENERAL_ERROR);
    env(NULL, NULL, "soon", NULL);
    CHECK_RV(f->C_Initialize(NULL), CKR_GENERAL_ERROR);
    env(NULL, NULL, NULL, "CKM_RSA_PKCS:x");
    CHECK_RV(f->C_Initialize(NULL), CKR_GENERAL_ERROR);
    CHECK_RV(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
}

/* Must run last: removal lasts for the life of the process. */
static void check_removal(void)
{
    CK_TOKEN_INFO ti;
    CK_SLOT_INFO si;
    CK_SESSION_HANDLE s = 0, s2 = 0;
    CK_SESSION_INFO sess;
    CK_ULONG n;

    env("2", NULL, "3", NULL);
    CHECK_RV(f->C_Initialize(NULL), CKR_OK);
    CHECK_RV(f->C_OpenSession(0x11, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
    CHECK_RV(f->C_GetTokenInfo(0x11, &ti), CKR_OK);
    CHECK_RV(f->C_GetTokenInfo(0x12, &ti), CKR_OK);
    CHECK_RV(f->C_GetTokenInfo(0x11, &ti), CKR_OK);
    CHECK_RV(f->C_GetTokenInfo(0x11, &ti), CKR_TOKEN_NOT_PRESENT);
    CHECK_RV(f->C_GetTokenInfo(0x12, &ti), CKR_TOKEN_NOT_PRESENT);
    CHECK_RV(f->C_GetSlotInfo(0x11, &si), CKR_OK);
    CHECK(!(si.flags & CKF_TOKEN_PRESENT));
    CHECK_RV(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
    CHECK(n == 0);
    CHECK_RV(f->C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK);
    CHECK(n == 2);
    CHECK_RV(f->C_GetMechanismList(0x11, NULL, &n), CKR_TOKEN_NOT_PRESENT);
    CHECK_RV(f->C_GetSessionInfo(s, &sess), CKR_DEVICE_REMOVED);
    CHECK_RV(login(s, "1234"), CKR_DEVICE_REMOVED);
    CHECK_RV(f->C_OpenSession(0x11, CKF_SERIAL_SESSION, NULL, NULL, &s2), CKR_TOKEN_NOT_PRESENT);
    CHECK_RV(f->C_CloseSession(s), CKR_OK);
    CHECK_RV(f->C_Finalize(NULL), CKR_OK);
    /* A pulled token stays pulled when the module is initialised again. */
    CHECK_RV(f->C_Initialize(NULL), CKR_OK);
    CHECK_RV(f->C_GetTokenInfo(0x11, &ti), CKR_TOKEN_NOT_PRESENT);
    CHECK_RV(f->C_Finalize(NULL), CKR_OK);
}

int main(int argc, char **argv)
{
    CK_C_GetFunctionList get_list;
    void *lib;

    if (argc != 3) {
        fprintf(stderr, "usage: %s MODULE LOGFILE\n", argv[0]);
        return 2;
    }
    setenv("FAKEP11_LOG", argv[2], 1);
    unsetenv("FAKEP11_PIN");
    unsetenv("FAKEP11_LABEL");
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "dlopen %s: %s\n", argv[1], dlerror());
        return 1;
    }
    get_list = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
    if (get_list == NULL || get_list(&f) != CKR_OK || f == NULL) {
        fprintf(stderr, "%s: no usable C_GetFunctionList\n", argv[1]);
        return 1;
    }
    CHECK(f->version.major == 2 && f->version.minor == 40);
    if (dlsym(lib, "C_Initialize") != NULL) {
        fprintf(stderr, "C_Initialize is exported; only C_GetFunctionList should be\n");
        failures++;
    }

    check_defaults();
    check_final_try_and_pinpad();
    check_two_tokens();
    check_mechs_and_errors();
    check_removal();

    (void)dlclose(lib);
    if (failures != 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("all fakep11 checks passed\n");
    return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * queue.c - the queue of requests. What an officer is told (queue_bind_from, queue_add*) is in
 * their language; why an entry was set aside is a record (queue/rejected/NAME.reason, the
 * daemon's journal, `queue list --json`): written in English, and `queue list` translates it.
 */
#include "queue.h"

#include "fsutil.h"
#include "i18n.h"
#include "pa_err.h"
#include "pjson.h"
#include "secret.h"
#include "tok.h"

#include <json-c/json.h>
#include <openssl/rand.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QUEUE_REQ_MAX    (256 * 1024)
#define QUEUE_JSON_DEPTH 32 /* json-c's default; an entry is a flat object */

static int path_of(char *buf, size_t len, const char *state_dir, const char *sub, const char *name)
{
    int n = snprintf(buf, len, "%s/queue%s%s%s%s", state_dir, sub ? "/" : "", sub ? sub : "",
                     name ? "/" : "", name ? name : "");

    return n < 0 || (size_t)n >= len ? PA_E_CONFIG : 0;
}

void queue_bind_clear(struct queue_bind *b)
{
    if (!b)
        return;
    free(b->serial);
    free(b->label);
    free(b->manufacturer);
    free(b->model);
    memset(b, 0, sizeof(*b));
}

bool queue_bind_empty(const struct queue_bind *b)
{
    return !b || (!b->serial && !b->label && !b->manufacturer && !b->model);
}

static bool attr_ok(const char *want, const char *have)
{
    return !want || strcmp(want, have) == 0;
}

bool queue_token_bound(const char *serial, const char *label, const char *manufacturer,
                       const char *model, const struct tok_info *tok)
{
    return attr_ok(serial, tok->serial) && attr_ok(label, tok->label) &&
           attr_ok(manufacturer, tok->manufacturer) && attr_ok(model, tok->model);
}

bool queue_bind_matches(const struct queue_bind *b, const struct tok_info *tok)
{
    if (queue_bind_empty(b))
        return false;
    return queue_token_bound(b->serial, b->label, b->manufacturer, b->model, tok);
}

bool queue_entry_fits(const struct queue_entry *e, const struct tok_info *tok, bool blank)
{
    if (queue_bind_empty(&e->bind))
        return blank;
    return queue_bind_matches(&e->bind, tok);
}

void queue_bind_format(const struct queue_bind *b, char *buf, size_t len)
{
    const char *names[] = {"token", "serial", "manufacturer", "model"};
    const char *vals[] = {b->label, b->serial, b->manufacturer, b->model};
    size_t pos = 0;

    if (len)
        buf[0] = '\0';
    for (size_t i = 0; i < 4 && len; i++) {
        int n;

        if (!vals[i])
            continue;
        n = snprintf(buf + pos, len - pos, "%s%s=%s", pos ? " " : "", names[i], vals[i]);
        if (n < 0 || (size_t)n >= len - pos)
            break;
        pos += (size_t)n;
    }
}

/* Copy an optional string; false when out of memory. */
static bool dup_opt(char **dst, const char *src)
{
    *dst = src ? strdup(src) : NULL;
    return !src || *dst;
}

/* The token attributes of a parsed URI (slot-id is not one: it changes between insertions). */
static int bind_from_uri(const struct tok_uri *u, const char *serial, struct queue_bind *ret)
{
    struct queue_bind b = {0};

    if (!dup_opt(&b.serial, serial ? serial : u->serial) || !dup_opt(&b.label, u->token) ||
        !dup_opt(&b.manufacturer, u->manufacturer) || !dup_opt(&b.model, u->model)) {
        queue_bind_clear(&b);
        return PA_E_NOMEM;
    }
    *ret = b;
    return 0;
}

int queue_bind_from(const char *serial, const char *token_uri, struct queue_bind *ret, char *errbuf,
                    size_t errlen)
{
    struct tok_uri u;
    int r;

    memset(&u, 0, sizeof(u));
    if (token_uri && tok_uri_parse(token_uri, false, &u) < 0) {
        snprintf(errbuf, errlen, "%s", _("--token: not a PKCS#11 URI, or it carries pin-value"));
        return PA_E_USAGE;
    }
    r = PA_E_USAGE;
    if (u.has_slot_id)
        snprintf(errbuf, errlen, "%s",
                 _("--token: slot-id changes from one insertion to the next; name the token by "
                   "serial, token (label), manufacturer or model"));
    else if (serial && u.serial && strcmp(serial, u.serial) != 0)
        snprintf(errbuf, errlen, _("--serial %s and the serial in --token differ"), serial);
    else
        r = bind_from_uri(&u, serial, ret);
    tok_uri_clear(&u);
    return r;
}

int queue_dir_prepare(const char *state_dir)
{
    static const char *const subs[] = {NULL, "taken", "rejected"};
    char p[4096];

    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (path_of(p, sizeof(p), state_dir, subs[i], NULL) < 0)
            return PA_E_CONFIG;
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
            return PA_E_IO;
    }
    return 0;
}

void queue_entry_clear(struct queue_entry *e)
{
    if (!e)
        return;
    free(e->request);
    queue_bind_clear(&e->bind);
    free(e->token_uri);
    free(e->officer);
    memset(e, 0, sizeof(*e));
}

void queue_list_free(struct queue_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        queue_entry_clear(&v[i]);
    free(v);
}

/* Who queued an entry, into its JSON (nothing when unknown). */
static void officer_json(json_object *o, const char *officer, long uid)
{
    if (officer)
        json_object_object_add(o, "officer", json_object_new_string(officer));
    if (uid >= 0)
        json_object_object_add(o, "officer_uid", json_object_new_int64(uid));
}

/* The entry file's JSON (format 2: the binding is stored, never derived again). */
static json_object *entry_json(const char *id, const char *reqpath, const struct queue_bind *b,
                               const char *token_uri)
{
    json_object *o = json_object_new_object(), *jb = NULL;

    if (!queue_bind_empty(b)) {
        const char *names[] = {"serial", "token", "manufacturer", "model"};
        const char *vals[] = {b->serial, b->label, b->manufacturer, b->model};

        jb = json_object_new_object();
        for (size_t i = 0; i < 4; i++)
            if (vals[i])
                json_object_object_add(jb, names[i], json_object_new_string(vals[i]));
    }
    json_object_object_add(o, "format", json_object_new_int(2));
    json_object_object_add(o, "id", json_object_new_string(id));
    json_object_object_add(o, "request", json_object_new_string(reqpath));
    json_object_object_add(o, "bind", jb);
    /* Format 1 readers knew only "serial": keep it, so an older reader never takes an entry
     * bound by serial for another token. */
    json_object_object_add(o, "serial", b && b->serial ? json_object_new_string(b->serial) : NULL);
    json_object_object_add(o, "token_uri", token_uri ? json_object_new_string(token_uri) : NULL);
    json_object_object_add(o, "created", json_object_new_int64((int64_t)time(NULL)));
    return o;
}

/* A new random entry id (32 hex digits). */
static int new_id(char id[33])
{
    unsigned char rnd[16];

    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return PA_E_INTERNAL;
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(id + 2 * i, 3, "%02x", rnd[i]);
    return 0;
}

/* Write the entry file for request copy reqpath; the copy is removed again on failure. */
static int write_entry(const char *state_dir, const char *id, const char *reqpath,
                       const struct queue_bind *bind, const char *token_uri, const char *officer,
                       long uid)
{
    json_object *o = entry_json(id, reqpath, bind, token_uri);
    char entpath[4096], name[64];
    int r;

    officer_json(o, officer, uid);
    /* Entries sort by name: creation time first, so the oldest is taken first. */
    snprintf(name, sizeof(name), "%012lld-%s.json", (long long)time(NULL), id);
    r = path_of(entpath, sizeof(entpath), state_dir, NULL, name);
    if (r == 0) {
        const char *txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);

        /* No card data in the entry: the officers' group may read it (queue list). */
        r = fs_write_atomic(entpath, txt, strlen(txt), 0640);
    }
    json_object_put(o);
    return r;
}

int queue_add_text(const char *state_dir, const char *text, size_t len,
                   const struct queue_bind *bind, const char *token_uri, const char *officer,
                   long officer_uid, char *ret_id, char *errbuf, size_t errlen)
{
    char id[33], reqpath[4096], name[64];
    int r;

    r = queue_dir_prepare(state_dir);
    if (r < 0) {
        snprintf(errbuf, errlen, _("cannot create %s/queue: %s"), state_dir, strerror(errno));
        return r;
    }
    r = new_id(id);
    if (r < 0)
        return r;
    /* The request may hold card data: the copy is private to the daemon's user (0600). */
    snprintf(name, sizeof(name), "%s.request.json", id);
    r = path_of(reqpath, sizeof(reqpath), state_dir, NULL, name);
    if (r == 0)
        r = fs_write_atomic(reqpath, text, len, 0600);
    if (r < 0) {
        snprintf(errbuf, errlen, _("cannot write %s"), reqpath);
        return r;
    }
    r = write_entry(state_dir, id, reqpath, bind, token_uri, officer, officer_uid);
    if (r < 0) {
        (void)fs_wipe_unlink(AT_FDCWD, reqpath);
        snprintf(errbuf, errlen, _("cannot write the entry for %s"), reqpath);
        return r;
    }
    if (ret_id)
        memcpy(ret_id, id, sizeof(id));
    return 0;
}

int queue_add(const char *state_dir, const char *request, const struct queue_bind *bind,
              const char *token_uri, char *ret_id, char *errbuf, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    int r;

    r = fs_read_file(request, QUEUE_REQ_MAX, &buf, &len);
    if (r < 0) {
        snprintf(errbuf, errlen, _("cannot read %s: %s"), request, strerror(errno));
        return PA_E_REQUEST;
    }
    r = queue_add_text(state_dir, buf, len, bind, token_uri, NULL, -1, ret_id, errbuf, errlen);
    secret_wipe(buf, len);
    free(buf);
    return r;
}

static char *opt_str(json_object *o, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return strdup(json_object_get_string(v));
}

/*
 * A stored "bind" object: string attributes among serial, token, manufacturer and model, at
 * least one. Anything else (another key or type, an empty object) is an error, never a weaker
 * binding.
 */
static int load_bind_object(json_object *jb, struct queue_bind *ret)
{
    char **dst[] = {&ret->serial, &ret->label, &ret->manufacturer, &ret->model};
    const char *names[] = {"serial", "token", "manufacturer", "model"};
    size_t nkeys = 0;

    if (!json_object_is_type(jb, json_type_object))
        return PA_E_JOB;
    json_object_object_foreach(jb, key, val)
    {
        size_t i = 0;

        while (i < 4 && strcmp(key, names[i]) != 0)
            i++;
        if (i == 4 || *dst[i] || !json_object_is_type(val, json_type_string))
            return PA_E_JOB;
        *dst[i] = strdup(json_object_get_string(val));
        if (!*dst[i])
            return PA_E_NOMEM;
        nkeys++;
    }
    return nkeys ? 0 : PA_E_JOB;
}

/*
 * The binding of an entry file: its "bind" object (format 2; null: unbound), or - for a format 1
 * entry, which had only "serial" - the serial plus the token attributes of its URI, so an entry
 * queued with --token before this version is bound as well. A binding that cannot be read makes
 * the entry unusable (never first-come). The caller clears *ret on error.
 */
static int load_bind(json_object *o, const char *token_uri, struct queue_bind *ret)
{
    json_object *jb;
    struct tok_uri u;
    char *serial;
    int r;

    memset(ret, 0, sizeof(*ret));
    if (json_object_object_get_ex(o, "bind", &jb))
        return jb ? load_bind_object(jb, ret) : 0;
    memset(&u, 0, sizeof(u));
    if (token_uri && tok_uri_parse(token_uri, false, &u) < 0)
        return PA_E_JOB;
    serial = opt_str(o, "serial");
    r = bind_from_uri(&u, serial, ret);
    free(serial);
    tok_uri_clear(&u);
    return r;
}

/* Is s exactly n lowercase hex digits (then the end, or what follows is checked by the caller)? */
static bool hex_run(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr("0123456789abcdef", s[i]))
            return false;
    return true;
}

/* "NNNNNNNNNNNN-<32 hex>.json": an entry's file name. */
static bool entry_name_ok(const char *name)
{
    return strlen(name) == 12 + 1 + 32 + 5 && strspn(name, "0123456789") == 12 && name[12] == '-' &&
           hex_run(name + 13, 32) && strcmp(name + 45, ".json") == 0;
}

/* "<32 hex>.request.json": a request copy's file name. */
static bool request_name_ok(const char *name)
{
    return strlen(name) == 32 + 13 && hex_run(name, 32) && strcmp(name + 32, ".request.json") == 0;
}

/* The fields of an entry file that is valid JSON (the caller checks what they say). */
static int entry_fields(json_object *o, struct queue_entry *ret, char **ret_id, char **ret_req)
{
    json_object *v;

    *ret_id = opt_str(o, "id");
    *ret_req = opt_str(o, "request");
    ret->token_uri = opt_str(o, "token_uri");
    ret->officer = opt_str(o, "officer");
    ret->officer_uid = -1;
    if (json_object_object_get_ex(o, "officer_uid", &v) && json_object_is_type(v, json_type_int))
        ret->officer_uid = (long)json_object_get_int64(v);
    if (json_object_object_get_ex(o, "created", &v))
        ret->created = (time_t)json_object_get_int64(v);
    return load_bind(o, ret->token_uri, &ret->bind);
}

/* Why an entry named name with this id and request path cannot be used (NULL: it can). */
static const char *entry_problem(const char *name, const char *id, const char *req)
{
    const char *base = req ? strrchr(req, '/') : NULL;

    if (!id || strlen(id) != 32 || !hex_run(id, 32))
        return N_("no valid id");
    if (strncmp(name + 13, id, 32) != 0)
        return N_("its id is not the one in its file name");
    if (!req || strncmp(base ? base + 1 : req, id, 32) != 0 ||
        strcmp(base ? base + 33 : req + 32, ".request.json") != 0)
        return N_("its request is not the entry's own copy in the queue");
    return NULL;
}

/*
 * Parse an entry file's text. The request is always the entry's own copy in the queue directory,
 * whatever path the file names. PA_E_REFUSED (why) when the entry cannot be used.
 */
static int parse_entry(const char *state_dir, const char *name, const char *buf,
                       struct queue_entry *ret, char *why, size_t whylen)
{
    const struct pjson_opts opts = {0, QUEUE_JSON_DEPTH, PJSON_OBJECT, PA_E_REFUSED};
    json_object *o = NULL;
    char *id = NULL, *req = NULL;
    const char *problem = N_("not a JSON object");
    int r = PA_E_REFUSED;

    memset(ret, 0, sizeof(*ret));
    if (pjson_parse(buf, strlen(buf), &opts, &o, NULL) == 0) {
        problem = N_("its token binding cannot be read");
        if (entry_fields(o, ret, &id, &req) == 0)
            problem = entry_problem(name, id, req);
    }
    if (!problem) {
        char file[64];

        memcpy(ret->id, id, 33);
        snprintf(file, sizeof(file), "%s.request.json", id);
        ret->request = malloc(4096);
        problem = !ret->request || path_of(ret->request, 4096, state_dir, NULL, file) < 0
                      ? N_("out of memory, or the path is too long")
                      : NULL;
        r = problem ? PA_E_REFUSED : 0;
    }
    if (problem) {
        snprintf(why, whylen, "%s", problem);
        queue_entry_clear(ret);
        r = PA_E_REFUSED;
    }
    free(id);
    free(req);
    json_object_put(o);
    return r;
}

/* The owner of STATE_DIR/queue: every file in it must be theirs. (uid_t)-1 when unknown. */
static uid_t queue_owner(const char *state_dir)
{
    struct stat st;
    char p[4096];

    if (path_of(p, sizeof(p), state_dir, NULL, NULL) < 0 || stat(p, &st) < 0)
        return (uid_t)-1;
    return st.st_uid;
}

/* Load entry file name of queue/[sub/]. PA_E_REFUSED (why) for an entry that cannot be used. */
static int load_entry(const char *state_dir, const char *sub, const char *name, uid_t owner,
                      struct queue_entry *ret, char *why, size_t whylen)
{
    char p[4096], *buf = NULL;
    size_t len = 0;
    int r;

    if (!entry_name_ok(name)) {
        snprintf(why, whylen, "%s", N_("not an entry's file name"));
        return PA_E_REFUSED;
    }
    r = path_of(p, sizeof(p), state_dir, sub, name);
    if (r == 0)
        r = fs_read_owned(AT_FDCWD, p, 64 * 1024, owner, &buf, &len, why, whylen);
    if (r < 0)
        return r;
    r = parse_entry(state_dir, name, buf, ret, why, whylen);
    free(buf);
    return r;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* What could be an entry: NAME.json, not a request copy, not a temporary file. */
static int entry_filter(const struct dirent *d)
{
    size_t n = strlen(d->d_name);

    return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".json") == 0 &&
           !strstr(d->d_name, ".request.json") && !strstr(d->d_name, ".tmp.");
}

/* Entry file names in queue/[sub/], oldest first. */
static int scan(const char *state_dir, const char *sub, struct dirent ***ret, int *ret_n)
{
    char dir[4096];
    int n;

    if (path_of(dir, sizeof(dir), state_dir, sub, NULL) < 0)
        return PA_E_CONFIG;
    n = scandir(dir, ret, entry_filter, by_name);
    if (n < 0) {
        if (errno == ENOENT) {
            *ret = NULL;
            *ret_n = 0;
            return 0;
        }
        return PA_E_IO;
    }
    *ret_n = n;
    return 0;
}

static void names_free(struct dirent **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The entries of queue/[sub/] that can be read (the others are skipped). */
static int list_in(const char *state_dir, const char *sub, struct queue_entry **ret, size_t *ret_n)
{
    struct dirent **names = NULL;
    struct queue_entry *v = NULL;
    uid_t owner = queue_owner(state_dir);
    char why[128];
    size_t k = 0;
    int n = 0, r;

    r = scan(state_dir, sub, &names, &n);
    if (r < 0)
        return r;
    v = calloc(n > 0 ? (size_t)n : 1, sizeof(*v));
    if (!v)
        r = PA_E_NOMEM;
    for (int i = 0; r == 0 && i < n; i++)
        if (load_entry(state_dir, sub, names[i]->d_name, owner, &v[k], why, sizeof(why)) == 0)
            k++;
    names_free(names, n);
    if (r < 0) {
        queue_list_free(v, k);
        return r;
    }
    *ret = v;
    *ret_n = k;
    return 0;
}

int queue_list(const char *state_dir, struct queue_entry **ret, size_t *ret_n)
{
    return list_in(state_dir, NULL, ret, ret_n);
}

int queue_taken_list(const char *state_dir, struct queue_entry **ret, size_t *ret_n)
{
    return list_in(state_dir, "taken", ret, ret_n);
}

/* Move queue/name to queue/rejected/ and write why next to it (NAME.reason, 0640). */
static void reject(const char *state_dir, const char *name, const char *why)
{
    char from[4096], to[4096], reason[4200], text[300];

    if (path_of(from, sizeof(from), state_dir, NULL, name) < 0 ||
        path_of(to, sizeof(to), state_dir, "rejected", name) < 0 || rename(from, to) != 0)
        return;
    snprintf(reason, sizeof(reason), "%s.reason", to);
    snprintf(text, sizeof(text), "%s\n", why);
    (void)fs_write_atomic(reason, text, strlen(text), 0640);
}

/* Append "name: why" to the list of rejections the caller reports. */
static void note_reject(char *buf, size_t len, const char *name, const char *why)
{
    size_t used = buf ? strlen(buf) : 0;

    if (buf && used < len)
        snprintf(buf + used, len - used, "%s%s: %s", used ? "; " : "", name, why);
}

/* Move entry file `name` to taken/ if it is for this token; true when taken (into *ret). */
static bool take_one(const char *state_dir, const char *name, const struct tok_info *tok,
                     bool want_bound, bool blank, struct queue_entry *ret, char *rej, size_t rejlen)
{
    struct queue_entry e;
    char p[4096], taken[4096], why[128];
    int r = load_entry(state_dir, NULL, name, queue_owner(state_dir), &e, why, sizeof(why));

    if (r == PA_E_REFUSED) { /* never usable: set aside, never first-come */
        reject(state_dir, name, why);
        note_reject(rej, rejlen, name, why);
    }
    if (r < 0)
        return false;
    if (queue_bind_empty(&e.bind) == want_bound || !queue_entry_fits(&e, tok, blank) ||
        path_of(p, sizeof(p), state_dir, NULL, name) < 0 ||
        path_of(taken, sizeof(taken), state_dir, "taken", name) < 0 || rename(p, taken) != 0) {
        queue_entry_clear(&e);
        return false;
    }
    *ret = e;
    return true;
}

int queue_take(const char *state_dir, const struct tok_info *tok, bool blank,
               struct queue_entry *ret, char *rejected, size_t rejlen)
{
    struct dirent **names = NULL;
    bool found = false;
    int n = 0, r;

    const char *lang = i18n_lang();

    if (rejected && rejlen)
        rejected[0] = '\0';
    r = scan(state_dir, NULL, &names, &n);
    if (r < 0)
        return r;
    (void)i18n_set_lang("en"); /* the reasons for setting entries aside are records */
    /* Two passes: an entry bound to this token wins over a first-come one. */
    for (int pass = 0; pass < 2 && !found; pass++)
        for (int i = 0; i < n && !found; i++)
            found =
                take_one(state_dir, names[i]->d_name, tok, pass == 0, blank, ret, rejected, rejlen);
    (void)i18n_set_lang(lang);
    names_free(names, n);
    return found ? 0 : PA_E_TOKEN_NOT_FOUND;
}

/* The name of the entry with this id in queue/[sub/] into name (64 bytes). */
static int find_by_id(const char *state_dir, const char *sub, const char *id, char *name)
{
    struct dirent **names = NULL;
    int n = 0, r = scan(state_dir, sub, &names, &n);

    if (r < 0)
        return r;
    r = PA_E_TOKEN_NOT_FOUND;
    for (int i = 0; i < n && r < 0; i++) {
        const char *d = names[i]->d_name;

        if (entry_name_ok(d) && strncmp(d + 13, id, 32) == 0 && strlen(id) == 32) {
            memcpy(name, d, 51); /* entry_name_ok: exactly 50 bytes */
            r = 0;
        }
    }
    names_free(names, n);
    return r;
}

int queue_untake(const char *state_dir, const char *id)
{
    char name[64], from[4096], to[4096];
    int r = find_by_id(state_dir, "taken", id, name);

    if (r < 0)
        return r;
    if (path_of(from, sizeof(from), state_dir, "taken", name) < 0 ||
        path_of(to, sizeof(to), state_dir, NULL, name) < 0)
        return PA_E_CONFIG;
    return rename(from, to) == 0 ? 0 : PA_E_IO;
}

int queue_taken_remove(const char *state_dir, const char *id)
{
    char name[64], p[4096];
    int r = find_by_id(state_dir, "taken", id, name);

    if (r == PA_E_TOKEN_NOT_FOUND)
        return 0;
    if (r < 0)
        return r;
    if (path_of(p, sizeof(p), state_dir, "taken", name) < 0)
        return PA_E_CONFIG;
    return unlink(p) == 0 || errno == ENOENT ? 0 : PA_E_IO;
}

bool queue_holds_request(const char *state_dir, const char *path, char *ret_id)
{
    const char *base = path ? strrchr(path, '/') : NULL;
    char dir[4096], queue[4096], real_dir[PATH_MAX], real_queue[PATH_MAX];

    if (!base || !request_name_ok(base + 1) || (size_t)(base - path) >= sizeof(dir))
        return false;
    memcpy(dir, path, (size_t)(base - path));
    dir[base - path] = '\0';
    if (path_of(queue, sizeof(queue), state_dir, NULL, NULL) < 0 || !realpath(dir, real_dir) ||
        !realpath(queue, real_queue) || strcmp(real_dir, real_queue) != 0)
        return false;
    if (ret_id) {
        memcpy(ret_id, base + 1, 32);
        ret_id[32] = '\0';
    }
    return true;
}

int queue_taken_find(const char *state_dir, const char *request, struct queue_entry *ret)
{
    char id[33], name[64];
    int r;

    if (!queue_holds_request(state_dir, request, id))
        return PA_E_TOKEN_NOT_FOUND;
    r = find_by_id(state_dir, "taken", id, name);
    if (r == 0) {
        char why[128];

        r = load_entry(state_dir, "taken", name, queue_owner(state_dir), ret, why, sizeof(why));
    }
    return r == 0 ? 0 : PA_E_TOKEN_NOT_FOUND;
}

int queue_forget_request(const char *state_dir, const char *request_path)
{
    char queue[4096], real_queue[PATH_MAX];
    int dfd, r;

    if (!queue_holds_request(state_dir, request_path, NULL))
        return 1; /* not a copy of ours: the officer's own file, left alone */
    if (path_of(queue, sizeof(queue), state_dir, NULL, NULL) < 0 || !realpath(queue, real_queue))
        return PA_E_IO;
    dfd = open(real_queue, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return PA_E_IO;
    r = fs_wipe_unlink(dfd, strrchr(request_path, '/') + 1);
    close(dfd);
    return r;
}

/* "NAME.reason" in rejected/: one reason, read into *ret (name without .reason). */
static int load_reason(const char *dir, const char *file, uid_t owner, struct queue_rejected *ret)
{
    char p[4400], *buf = NULL, why[128];
    size_t len = 0, n = strlen(file) - 7;
    int r;

    snprintf(p, sizeof(p), "%s/%s", dir, file);
    r = fs_read_owned(AT_FDCWD, p, sizeof(ret->reason) - 1, owner, &buf, &len, why, sizeof(why));
    if (r < 0)
        return r;
    buf[strcspn(buf, "\n")] = '\0';
    snprintf(ret->name, sizeof(ret->name), "%.*s", (int)(n < 63 ? n : 63), file);
    snprintf(ret->reason, sizeof(ret->reason), "%s", buf);
    free(buf);
    return 0;
}

static int reason_filter(const struct dirent *d)
{
    size_t n = strlen(d->d_name);

    return d->d_name[0] != '.' && n > 7 && strcmp(d->d_name + n - 7, ".reason") == 0 &&
           !strstr(d->d_name, ".tmp.");
}

int queue_rejected_list(const char *state_dir, struct queue_rejected **ret, size_t *ret_n)
{
    struct dirent **names = NULL;
    struct queue_rejected *v;
    char dir[4096];
    size_t k = 0;
    int n;

    if (path_of(dir, sizeof(dir), state_dir, "rejected", NULL) < 0)
        return PA_E_CONFIG;
    n = scandir(dir, &names, reason_filter, by_name);
    if (n < 0 && errno != ENOENT)
        return PA_E_IO;
    n = n < 0 ? 0 : n;
    v = calloc(n > 0 ? (size_t)n : 1, sizeof(*v));
    for (int i = 0; v && i < n; i++)
        if (load_reason(dir, names[i]->d_name, queue_owner(state_dir), &v[k]) == 0)
            k++;
    names_free(names, n);
    if (!v)
        return PA_E_NOMEM;
    *ret = v;
    *ret_n = k;
    return 0;
}

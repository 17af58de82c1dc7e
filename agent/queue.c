/* SPDX-License-Identifier: Apache-2.0 */
#include "queue.h"

#include "fsutil.h"
#include "pa_err.h"
#include "tok.h"

#include <json-c/json.h>
#include <openssl/rand.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QUEUE_REQ_MAX (256 * 1024)

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

bool queue_bind_matches(const struct queue_bind *b, const struct tok_info *tok)
{
    if (queue_bind_empty(b))
        return false;
    return attr_ok(b->serial, tok->serial) && attr_ok(b->label, tok->label) &&
           attr_ok(b->manufacturer, tok->manufacturer) && attr_ok(b->model, tok->model);
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
        snprintf(errbuf, errlen, "--token: not a PKCS#11 URI, or it carries pin-value");
        return PA_E_USAGE;
    }
    r = PA_E_USAGE;
    if (u.has_slot_id)
        snprintf(errbuf, errlen,
                 "--token: slot-id changes from one insertion to the next; name the token by "
                 "serial, token (label), manufacturer or model");
    else if (serial && u.serial && strcmp(serial, u.serial) != 0)
        snprintf(errbuf, errlen, "--serial %s and the serial in --token differ", serial);
    else
        r = bind_from_uri(&u, serial, ret);
    tok_uri_clear(&u);
    return r;
}

int queue_dir_prepare(const char *state_dir)
{
    char p[4096];

    if (path_of(p, sizeof(p), state_dir, NULL, NULL) < 0)
        return PA_E_CONFIG;
    if (mkdir(p, 0700) < 0 && errno != EEXIST)
        return PA_E_IO;
    if (path_of(p, sizeof(p), state_dir, "taken", NULL) < 0)
        return PA_E_CONFIG;
    if (mkdir(p, 0700) < 0 && errno != EEXIST)
        return PA_E_IO;
    return 0;
}

void queue_entry_clear(struct queue_entry *e)
{
    if (!e)
        return;
    free(e->request);
    queue_bind_clear(&e->bind);
    free(e->token_uri);
    memset(e, 0, sizeof(*e));
}

void queue_list_free(struct queue_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        queue_entry_clear(&v[i]);
    free(v);
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

int queue_add(const char *state_dir, const char *request, const struct queue_bind *bind,
              const char *token_uri, char *ret_id, char *errbuf, size_t errlen)
{
    unsigned char rnd[16];
    char id[33], reqpath[4096], entpath[4096], name[64];
    json_object *o = NULL;
    char *buf = NULL;
    size_t len = 0;
    int r;

    r = queue_dir_prepare(state_dir);
    if (r < 0) {
        snprintf(errbuf, errlen, "cannot create %s/queue: %s", state_dir, strerror(errno));
        return r;
    }
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return PA_E_INTERNAL;
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(id + 2 * i, 3, "%02x", rnd[i]);
    r = fs_read_file(request, QUEUE_REQ_MAX, &buf, &len);
    if (r < 0) {
        snprintf(errbuf, errlen, "cannot read %s: %s", request, strerror(errno));
        return PA_E_REQUEST;
    }
    /* The request may hold card data: the copy is private to the queue (0600). */
    snprintf(name, sizeof(name), "%s.request.json", id);
    r = path_of(reqpath, sizeof(reqpath), state_dir, NULL, name);
    if (r == 0)
        r = fs_write_atomic(reqpath, buf, len, 0600);
    explicit_bzero(buf, len);
    free(buf);
    if (r < 0) {
        snprintf(errbuf, errlen, "cannot write %s", reqpath);
        return r;
    }
    o = entry_json(id, reqpath, bind, token_uri);
    /* Entries sort by name: creation time first, so the oldest is taken first. */
    snprintf(name, sizeof(name), "%012lld-%s.json", (long long)time(NULL), id);
    r = path_of(entpath, sizeof(entpath), state_dir, NULL, name);
    if (r == 0) {
        const char *txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);

        r = fs_write_atomic(entpath, txt, strlen(txt), 0600);
    }
    json_object_put(o);
    if (r < 0) {
        (void)unlink(reqpath);
        snprintf(errbuf, errlen, "cannot write %s", entpath);
        return r;
    }
    if (ret_id)
        memcpy(ret_id, id, sizeof(id));
    return 0;
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

static int load_entry(const char *path, struct queue_entry *ret)
{
    json_object *o = NULL, *v;
    char *buf = NULL, *id;
    size_t len = 0;
    bool bad;
    int r = fs_read_file(path, 64 * 1024, &buf, &len);

    if (r < 0)
        return r;
    o = json_tokener_parse(buf);
    free(buf);
    memset(ret, 0, sizeof(*ret));
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return PA_E_JOB;
    }
    id = opt_str(o, "id");
    ret->request = opt_str(o, "request");
    ret->token_uri = opt_str(o, "token_uri");
    bad = load_bind(o, ret->token_uri, &ret->bind) < 0;
    if (json_object_object_get_ex(o, "created", &v))
        ret->created = (time_t)json_object_get_int64(v);
    if (id && strlen(id) == 32)
        memcpy(ret->id, id, 33);
    free(id);
    json_object_put(o);
    if (bad || !ret->request || !ret->id[0]) {
        queue_entry_clear(ret);
        return PA_E_JOB;
    }
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int entry_filter(const struct dirent *d)
{
    size_t n = strlen(d->d_name);

    return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".json") == 0 &&
           !strstr(d->d_name, ".request.json") && !strstr(d->d_name, ".tmp.");
}

/* Entry file names, oldest first. */
static int scan(const char *state_dir, struct dirent ***ret, int *ret_n)
{
    char dir[4096];
    int n;

    if (path_of(dir, sizeof(dir), state_dir, NULL, NULL) < 0)
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

int queue_list(const char *state_dir, struct queue_entry **ret, size_t *ret_n)
{
    struct dirent **names = NULL;
    struct queue_entry *v = NULL;
    size_t k = 0;
    int n = 0, r;

    r = scan(state_dir, &names, &n);
    if (r < 0)
        return r;
    v = calloc(n > 0 ? (size_t)n : 1, sizeof(*v));
    if (!v)
        r = PA_E_NOMEM;
    for (int i = 0; i < n; i++) {
        char p[4096];

        if (r == 0 && path_of(p, sizeof(p), state_dir, NULL, names[i]->d_name) == 0 &&
            load_entry(p, &v[k]) == 0)
            k++;
        free(names[i]);
    }
    free(names);
    if (r < 0) {
        queue_list_free(v, k);
        return r;
    }
    *ret = v;
    *ret_n = k;
    return 0;
}

/* Move entry file `name` to taken/ if it is for this token; true when taken (into *ret). */
static bool take_one(const char *state_dir, const char *name, const struct tok_info *tok,
                     bool want_bound, bool blank, struct queue_entry *ret)
{
    struct queue_entry e;
    char p[4096], taken[4096];

    if (path_of(p, sizeof(p), state_dir, NULL, name) < 0 || load_entry(p, &e) < 0)
        return false;
    if (queue_bind_empty(&e.bind) == want_bound || !queue_entry_fits(&e, tok, blank) ||
        path_of(taken, sizeof(taken), state_dir, "taken", name) < 0 || rename(p, taken) != 0) {
        queue_entry_clear(&e);
        return false;
    }
    *ret = e;
    return true;
}

int queue_take(const char *state_dir, const struct tok_info *tok, bool blank,
               struct queue_entry *ret)
{
    struct dirent **names = NULL;
    bool found = false;
    int n = 0, r;

    r = scan(state_dir, &names, &n);
    if (r < 0)
        return r;
    /* Two passes: an entry bound to this token wins over a first-come one. */
    for (int pass = 0; pass < 2 && !found; pass++)
        for (int i = 0; i < n && !found; i++)
            found = take_one(state_dir, names[i]->d_name, tok, pass == 0, blank, ret);
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return found ? 0 : PA_E_TOKEN_NOT_FOUND;
}

int queue_untake(const char *state_dir, const char *id)
{
    char dir[4096], from[4096], to[4096];
    struct dirent *d;
    DIR *dp;
    int r = PA_E_TOKEN_NOT_FOUND;

    if (path_of(dir, sizeof(dir), state_dir, "taken", NULL) < 0)
        return PA_E_CONFIG;
    dp = opendir(dir);
    if (!dp)
        return PA_E_IO;
    while ((d = readdir(dp)) != NULL) {
        const char *dash = strchr(d->d_name, '-');

        if (!dash || strncmp(dash + 1, id, 32) != 0 || strcmp(dash + 33, ".json") != 0)
            continue;
        if (path_of(from, sizeof(from), state_dir, "taken", d->d_name) == 0 &&
            path_of(to, sizeof(to), state_dir, NULL, d->d_name) == 0)
            r = rename(from, to) == 0 ? 0 : PA_E_IO;
        break;
    }
    closedir(dp);
    return r;
}

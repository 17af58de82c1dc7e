/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pjson.c - the one strict JSON parse (see pjson.h): json-c's strict tokener, and the checks
 * around it every reader of JSON in the agent shares.
 */
#include "pjson.h"

#include "i18n.h"
#include "pa_err.h"
#include "secret.h"

#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int pjson_fail(struct pjson_err *e, int err, enum pjson_fail fail)
{
    if (e)
        e->fail = fail;
    return err;
}

/* Where off is, 1-based: e->off, e->line, e->col. */
static void pjson_where(struct pjson_err *e, const char *buf, size_t off)
{
    if (!e)
        return;
    e->off = off;
    e->line = 1;
    e->col = 1;
    for (size_t i = 0; i < off; i++) {
        if (buf[i] == '\n') {
            e->line++;
            e->col = 1;
        } else {
            e->col++;
        }
    }
}

static bool pjson_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Free a tokener; with PJSON_WIPE first wipe its scratch buffer (the last strings parsed). */
static void pjson_tokener_free(struct json_tokener *tok, unsigned flags)
{
    if (!tok)
        return;
    if ((flags & PJSON_WIPE) && tok->pb && tok->pb->buf)
        secret_wipe(tok->pb->buf, (size_t)tok->pb->size);
    json_tokener_free(tok);
}

/* Run the tokener: 0 and *ret when buf is one value and (unless PJSON_NO_SPACE) white space. */
static int pjson_tokens(struct json_tokener *tok, const char *buf, size_t len,
                        const struct pjson_opts *o, json_object **ret, struct pjson_err *e)
{
    enum json_tokener_error jerr;
    json_object *root;
    size_t end;

    root = json_tokener_parse_ex(tok, buf, (int)len);
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    if (jerr != json_tokener_success) {
        pjson_where(e, buf, jerr == json_tokener_continue ? len : end);
        if (e)
            e->desc = json_tokener_error_desc(jerr);
        json_object_put(root);
        return pjson_fail(e, o->err,
                          jerr == json_tokener_continue ? PJSON_TRUNCATED : PJSON_SYNTAX);
    }
    while (end < len && pjson_space(buf[end]))
        end++;
    /* json-c's strict mode eats the white space after the value itself and refuses anything
     * else there: nothing follows the value when the last byte is not white space. */
    while ((o->flags & PJSON_NO_SPACE) && end > 0 && pjson_space(buf[end - 1]))
        end--;
    if (end < len) {
        pjson_where(e, buf, end);
        if (o->flags & PJSON_WIPE)
            pjson_wipe(root);
        json_object_put(root);
        return pjson_fail(e, o->err, PJSON_TRAILING);
    }
    *ret = root;
    return 0;
}

/* The checks before the tokener: data there, not too long, no NUL byte. */
static int pjson_precheck(const char *buf, size_t len, const struct pjson_opts *o,
                          struct pjson_err *e)
{
    if (!buf)
        return pjson_fail(e, o->err, PJSON_NO_DATA);
    if ((o->max && len > o->max) || len > INT_MAX)
        return pjson_fail(e, o->err, PJSON_TOO_LARGE);
    if (memchr(buf, '\0', len))
        return pjson_fail(e, o->err, PJSON_NUL);
    return 0;
}

/* The checks of the value: an object, numbers finite, as o asks. */
static int pjson_postcheck(json_object *root, const struct pjson_opts *o, struct pjson_err *e)
{
    if ((o->flags & PJSON_OBJECT) && !json_object_is_type(root, json_type_object))
        return pjson_fail(e, o->err, PJSON_NOT_OBJECT);
    if ((o->flags & PJSON_FINITE) && !pjson_finite(root))
        return pjson_fail(e, o->err, PJSON_RANGE);
    return 0;
}

int pjson_parse(const char *buf, size_t len, const struct pjson_opts *o, struct json_object **ret,
                struct pjson_err *e)
{
    struct json_tokener *tok = NULL;
    json_object *root = NULL;
    int r;

    if (e)
        memset(e, 0, sizeof(*e));
    r = pjson_precheck(buf, len, o, e);
    if (r < 0)
        return r;
    tok = json_tokener_new_ex(o->depth);
    if (!tok)
        return PA_E_NOMEM;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
                                    ((o->flags & PJSON_UTF8) ? JSON_TOKENER_VALIDATE_UTF8 : 0));
    r = pjson_tokens(tok, buf, len, o, &root, e);
    if (r == 0)
        r = pjson_postcheck(root, o, e);
    if (r == 0) {
        *ret = root;
        root = NULL;
    }
    if (root && (o->flags & PJSON_WIPE))
        pjson_wipe(root);
    json_object_put(root);
    pjson_tokener_free(tok, o->flags);
    return r;
}

/* The syntax failures: "[NAME:LINE:COL: ]invalid JSON: WHAT". */
static void pjson_explain_syntax(const struct pjson_err *e, const char *name, char *errbuf,
                                 size_t errlen)
{
    const char *what = e->fail == PJSON_TRUNCATED ? _("unexpected end of input") : e->desc;

    if (e->fail == PJSON_TRAILING && name)
        (void)pa_errf(errbuf, errlen, 0, _("%s:%lu:%lu: invalid JSON: data after the end"), name,
                      e->line, e->col);
    else if (e->fail == PJSON_TRAILING)
        (void)pa_errf(errbuf, errlen, 0, _("invalid JSON: data after the end"));
    else if (name)
        (void)pa_errf(errbuf, errlen, 0, _("%s:%lu:%lu: invalid JSON: %s"), name, e->line, e->col,
                      what ? what : "");
    else
        (void)pa_errf(errbuf, errlen, 0, _("invalid JSON: %s"), what ? what : "");
}

void pjson_explain(const struct pjson_err *e, const char *name, size_t max, char *errbuf,
                   size_t errlen)
{
    switch (e->fail) {
    case PJSON_TRUNCATED:
    case PJSON_SYNTAX:
    case PJSON_TRAILING:
        pjson_explain_syntax(e, name, errbuf, errlen);
        break;
    case PJSON_TOO_LARGE:
        if (name)
            (void)pa_errf(errbuf, errlen, 0, _("%s: larger than %d bytes"), name, (int)max);
        else
            (void)pa_errf(errbuf, errlen, 0, _("larger than %d bytes"), (int)max);
        break;
    case PJSON_NUL:
        if (name)
            (void)pa_errf(errbuf, errlen, 0, _("%s: contains a NUL byte"), name);
        else
            (void)pa_errf(errbuf, errlen, 0, _("contains a NUL byte"));
        break;
    case PJSON_NOT_OBJECT:
        if (name)
            (void)pa_errf(errbuf, errlen, 0, _("%s: must contain a JSON object"), name);
        else
            (void)pa_errf(errbuf, errlen, 0, _("not a JSON object"));
        break;
    case PJSON_RANGE:
        (void)pa_errf(errbuf, errlen, 0, _("%s: a number is out of range"), name ? name : "JSON");
        break;
    default:
        (void)pa_errf(errbuf, errlen, 0, _("no data"));
        break;
    }
}

bool pjson_finite(struct json_object *v)
{
    size_t n;

    switch (json_object_get_type(v)) {
    case json_type_double:
        return isfinite(json_object_get_double(v));
    case json_type_object: {
        json_object_object_foreach(v, key, val)
        {
            (void)key;
            if (!pjson_finite(val))
                return false;
        }
        return true;
    }
    case json_type_array:
        n = json_object_array_length(v);
        for (size_t i = 0; i < n; i++)
            if (!pjson_finite(json_object_array_get_idx(v, i)))
                return false;
        return true;
    default:
        return true;
    }
}

void pjson_wipe(struct json_object *v)
{
    if (json_object_is_type(v, json_type_string)) {
        secret_wipe((void *)(uintptr_t)json_object_get_string(v),
                    (size_t)json_object_get_string_len(v));
    } else if (json_object_is_type(v, json_type_object)) {
        json_object_object_foreach(v, key, val)
        {
            (void)key;
            pjson_wipe(val);
        }
    } else if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++)
            pjson_wipe(json_object_array_get_idx(v, i));
    }
}

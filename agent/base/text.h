/* SPDX-License-Identifier: Apache-2.0 */
/*
 * text.h - text made safe to print (the kiosk's screen, the officers' queue, the journal).
 */
#ifndef PKIO_TEXT_H
#define PKIO_TEXT_H

#include <stddef.h>

/*
 * Copy in into out (outlen bytes, always NUL-terminated) so that printing it on a terminal or
 * in the journal shows it and does nothing else: valid UTF-8 is kept, except C0 controls, DEL,
 * C1 controls (U+0080..U+009F), the line and paragraph separators and the bidirectional
 * overrides and isolates, which become '?'; every byte of an invalid or overlong sequence (or a
 * surrogate) becomes '?'. A character that does not fit is dropped whole. Pure.
 */
void text_clean(const char *in, char *out, size_t outlen);

#endif

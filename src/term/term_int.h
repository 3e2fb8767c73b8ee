/* Internal to src/term: the wire both sides speak (term.h). */
#ifndef CRYO_TERM_TERM_INT_H
#define CRYO_TERM_TERM_INT_H

#include <stddef.h>

/* One frame: type, 2-byte little-endian length, data. */
int term_send(int fd, char type, const void *data, size_t len);

#endif

/* The image of a group as store records: names of the records, page spaces,
 * and reading/writing protobuf messages as records.
 *
 * Records of one snapshot (keys at most STORE_KEY_MAX bytes):
 *   "group"          GroupEntry: the group, its processes and their spaces
 *   "p<pid>.core"    ProcessEntry: creds, signals, timers, threads, ...
 *   "p<pid>.mm"      MmEntry: mappings and mm fields
 *   "p<pid>.fds"     FdsEntry: the fd table
 *
 * Pages: the memory of the process with page space S at address A is page
 * STORE_KEY(S, A >> 12). Spaces below IMAGE_SPACE_FILES hold processes;
 * from IMAGE_SPACE_FILES up, contents of files a snapshot keeps (memfd,
 * deleted files, shared anonymous memory, System V segments), as pages
 * from offset 0; the "group" record lists the System V segments. */
#ifndef CRYO_IMAGE_IMAGE_H
#define CRYO_IMAGE_IMAGE_H

#include <stddef.h>
#include <sys/types.h>

#include "image/image.pb-c.h"
#include "store/store.h"

#define IMAGE_VERSION		1
#define IMAGE_KEY_GROUP		"group"
#define IMAGE_SPACE_FILES	2048u
#define IMAGE_SPACE_MAX		4095u
#define IMAGE_RECORD_MAX	STORE_RECORD_MAX

/* "p<pid>.<what>" into buf (at least STORE_KEY_MAX + 1 bytes). */
void image_key(char *buf, size_t n, pid_t pid, const char *what);

/* Pack msg and store it under key. */
int image_put(struct store_txn *t, const char *key, const ProtobufCMessage *msg);

/* Read and unpack the record key as a desc message. *out is freed with
 * image_free(). -ENOENT if absent, -EBADMSG if it does not unpack. */
int image_get(struct store_snap *sn, const char *key, const ProtobufCMessageDescriptor *desc,
	      ProtobufCMessage **out);
void image_free(ProtobufCMessage *msg);

/* Typed shorthands. */
#define image_get_group(sn, out) \
	image_get((sn), IMAGE_KEY_GROUP, &cryo__group_entry__descriptor, (ProtobufCMessage **)(out))

#endif

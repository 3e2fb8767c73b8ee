#define LOG_PREFIX "image: "
#include "image/image.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

void image_key(char *buf, size_t n, pid_t pid, const char *what)
{
	snprintf(buf, n, "p%d.%s", (int)pid, what);
}

int image_put(struct store_txn *t, const char *key, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf;
	int r;

	if (len > IMAGE_RECORD_MAX) {
		pr_err("record %s is %zu bytes, more than a record may hold", key, len);
		return -EFBIG;
	}
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(msg, buf);
	r = store_txn_put_record(t, key, buf, len);
	free(buf);
	return r;
}

int image_get(struct store_snap *sn, const char *key, const ProtobufCMessageDescriptor *desc,
	      ProtobufCMessage **out)
{
	void *data;
	size_t len;
	int r = store_snap_read_record(sn, key, &data, &len);

	if (r)
		return r;
	*out = protobuf_c_message_unpack(desc, NULL, len, data);
	free(data);
	if (!*out) {
		pr_err("record %s does not decode as %s", key, desc->name);
		return -EBADMSG;
	}
	return 0;
}

void image_free(ProtobufCMessage *msg)
{
	if (msg)
		protobuf_c_message_free_unpacked(msg, NULL);
}

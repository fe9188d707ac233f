// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: the HTTP/1.1 head parser and the chunked decoder.
 * The input is parsed as a request, as a response, and fed to the chunked
 * decoder in pieces whose sizes come from the first byte. Invariants: a
 * complete parse never claims more bytes than given; payload spans stay
 * inside the input; an HTTP/1.1 request head the parser accepts is accepted
 * the same way from its split fields (http1_request_from_fields, the
 * HTTP/2 handover).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a private copy, so reads past the end hit ASan's redzone */
	char *buf = malloc(size ? size : 1);
	struct http1_msg m;
	struct http1_chunked ch;
	size_t off = 0, step;
	int r;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	r = http1_parse_request(buf, size, &m);
	if (r > 0 && (size_t)r > size)
		abort();
	if (r > 0 && m.minor_version == 1) {
		static struct http1_msg f;

		f.n_headers = m.n_headers;
		memcpy(f.headers, m.headers, m.n_headers * sizeof(m.headers[0]));
		if (http1_request_from_fields(&f, m.method.p, m.method.n, m.target.p, m.target.n) ||
		    f.body != m.body || f.content_length != m.content_length ||
		    f.keep_alive != m.keep_alive || f.expect_continue != m.expect_continue ||
		    f.upgrade != m.upgrade || f.host.n != m.host.n ||
		    memcmp(f.host.p, m.host.p, m.host.n) || f.path.n != m.path.n ||
		    f.query.n != m.query.n)
			abort();
	}
	r = http1_parse_response(buf, size, "GET", 3, &m);
	if (r > 0 && (size_t)r > size)
		abort();
	r = http1_parse_response(buf, size, "HEAD", 4, &m);
	if (r > 0 && (size_t)r > size)
		abort();

	http1_chunked_init(&ch);
	step = size ? (size_t)(data[0] % 17) + 1 : 1;
	while (off < size && !ch.done) {
		struct http1_str out[8];
		size_t n_out = 8, len = size - off < step ? size - off : step;

		r = http1_chunked_decode(&ch, buf + off, len, out, &n_out);
		if (r < 0)
			break;
		if ((size_t)r > len || n_out > 8)
			abort();
		for (size_t i = 0; i < n_out; i++)
			if (out[i].p < buf + off || out[i].p + out[i].n > buf + off + len)
				abort();
		if (r == 0 && len == size - off)
			break;
		off += r ? (size_t)r : len;
	}
	free(buf);
	return 0;
}

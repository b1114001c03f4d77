/*
 * openapi.c - GET /openapi.yaml: the OpenAPI description of the API, the
 * bytes of api/openapi.yaml as they are in the repository.
 *
 * The file is built into the binary (the assembler's .incbin; the Makefile
 * makes this object depend on it), so sheafd needs no file at run time and
 * always serves the description of the code it was built from. Like
 * /healthz, it needs no token.
 */
#include "api_int.h"

/* The bytes of api/openapi.yaml, from openapi_yaml to openapi_yaml_end.
 * Paths in .incbin are relative to the directory the compiler runs in,
 * the repository's root (the Makefile's). */
__asm__(".pushsection .rodata\n"
        ".global openapi_yaml\n"
        ".type openapi_yaml, @object\n"
        "openapi_yaml:\n"
        ".incbin \"api/openapi.yaml\"\n"
        ".global openapi_yaml_end\n"
        ".type openapi_yaml_end, @object\n"
        "openapi_yaml_end:\n"
        ".byte 0\n"
        ".popsection\n");

extern const char openapi_yaml[];
extern const char openapi_yaml_end[];

int
api_openapi(api_req *r)
{
    struct MHD_Response *resp;

    resp = MHD_create_response_from_buffer(
        (size_t)(openapi_yaml_end - openapi_yaml), (void *)openapi_yaml,
        MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "",
                         "cannot make the response");
    api_header_set(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/yaml");
    api_reply(r, MHD_HTTP_OK, NULL);
    r->reply = resp;
    return MHD_HTTP_OK;
}

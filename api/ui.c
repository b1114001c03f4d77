/*
 * ui.c - the dashboard: a small page over the public API, built into
 * sheafd (SPEC section 3, GET /).
 *
 *   GET /             the page (api/ui/index.html)
 *   GET /ui/{name}    its files: index.html, app.js, style.css
 *
 * The files are embedded at build time with .incbin (the Makefile makes
 * build/api/ui.o depend on them), so the binary needs nothing beside it and
 * the page loads nothing from elsewhere. Every reply carries a strict
 * Content-Security-Policy: scripts, styles, images and connections from
 * this server only, no inline script or style, no framing. The page needs
 * no token (it holds no data); its API calls send the one the user enters.
 */
#include "api_int.h"

#include <string.h>

/* Embed 'file' between the symbols api_ui_<sym> and api_ui_<sym>_end. */
#define UI_EMBED(sym, file)                 \
    __asm__(".pushsection .rodata\n"        \
            ".balign 16\n"                  \
            ".globl api_ui_" #sym "\n"      \
            ".hidden api_ui_" #sym "\n"     \
            "api_ui_" #sym ":\n"            \
            ".incbin \"" file "\"\n"        \
            ".globl api_ui_" #sym "_end\n"  \
            ".hidden api_ui_" #sym "_end\n" \
            "api_ui_" #sym "_end:\n"        \
            ".byte 0\n"                     \
            ".popsection\n");               \
    extern const char api_ui_##sym[];       \
    extern const char api_ui_##sym##_end[]

UI_EMBED(index_html, "api/ui/index.html");
UI_EMBED(app_js, "api/ui/app.js");
UI_EMBED(style_css, "api/ui/style.css");

/* The policy of every reply of this file. */
#define UI_CSP                                                      \
    "default-src 'self'; script-src 'self'; style-src 'self'; "     \
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; " \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* One embedded file. */
typedef struct ui_file {
    const char *name;  /* the {name} of /ui/{name} */
    const char *type;  /* its Content-Type */
    const char *start; /* its bytes */
    const char *end;
} ui_file;

static const ui_file ui_files[] = {
    {"index.html", "text/html; charset=utf-8", api_ui_index_html,
     api_ui_index_html_end},
    {"app.js", "text/javascript; charset=utf-8", api_ui_app_js,
     api_ui_app_js_end},
    {"style.css", "text/css; charset=utf-8", api_ui_style_css,
     api_ui_style_css_end},
};

/* Reply with the embedded file 'f' and the headers every page file has. */
static int
ui_send(api_req *r, const ui_file *f)
{
    struct MHD_Response *resp;

    resp = MHD_create_response_from_buffer((size_t)(f->end - f->start),
                                           (void *)f->start,
                                           MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "",
                         "cannot make the reply");
    api_header_set(r, MHD_HTTP_HEADER_CONTENT_TYPE, f->type);
    api_header_set(r, "Content-Security-Policy", UI_CSP);
    api_header_set(r, "X-Content-Type-Options", "nosniff");
    api_header_set(r, "Referrer-Policy", "no-referrer");
    api_header_set(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    api_reply(r, MHD_HTTP_OK, NULL);
    r->reply = resp;
    return MHD_HTTP_OK;
}

int
api_ui_index(api_req *r)
{
    return ui_send(r, &ui_files[0]);
}

int
api_ui_asset(api_req *r)
{
    size_t i;

    for (i = 0; i < sizeof ui_files / sizeof ui_files[0]; i++)
        if (strcmp(r->name, ui_files[i].name) == 0)
            return ui_send(r, &ui_files[i]);
    return api_error(r, MHD_HTTP_NOT_FOUND, "not_found", "",
                     "no such file of the dashboard: /ui/%s", r->name);
}

/*
 * nginx-loyalty: loyalty_timezone NAME, the shop's time zone, read from
 * the system's tzdata by the core (core/loyalty_tz.c) as the directive is
 * parsed, so that a bad name is refused at its line.  Its days are the
 * Lua date helpers', the cadences' (birthdays and calendar dates) and the
 * click counters'.  TZ is never set: the zone is the module's, not the
 * process's.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"
#include "loyalty_tz.h"


char *
ngx_http_loyalty_timezone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_main_conf_t *lmcf = conf;

    char          err[NGX_MAX_ERROR_STR];
    ngx_str_t    *value;
    loyalty_tz_t *tz;

    if (lmcf->tz) {
        return "is duplicate";
    }

    value = cf->args->elts;

    tz = ngx_palloc(cf->pool, sizeof(loyalty_tz_t));
    if (tz == NULL) {
        return NGX_CONF_ERROR;
    }

    /* the arguments are NUL-terminated */
    if (ngx_strlen(value[1].data) != value[1].len
        || loyalty_tz_load(tz, NULL, (char *) value[1].data, err,
                           sizeof(err))
           != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\" %s", &cmd->name,
                           value[1].len == ngx_strlen(value[1].data)
                           ? err : "has a NUL byte in its name");
        return NGX_CONF_ERROR;
    }

    lmcf->tz = tz;

    return NGX_CONF_OK;
}

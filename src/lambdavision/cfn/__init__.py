"""The one template model used by `local`, `package` and `deploy`.

- `document`: the one reader (JSON, or YAML with short tags; errors name the file and line) and writer.
- `parameters`: the one `--parameter-overrides` parser, and parameter values.
- `intrinsics`: the one Ref / GetAtt / Sub / If... resolver.
- `sam`: SAM templates through aws-sam-translator (AWS's own transform), offline; `explicit`
  adjusts its output as lambdavision's own template is written (what moto can deploy).
- `functions`: the one walker over the functions, and `FunctionSpec`; `routes`: the API routes.
- `model`: a template read whole (`load_app`, `load_functions`, `plain_template`).
"""

from lambdavision.cfn.document import (
    SAM_TRANSFORM,
    TemplateError,
    dump_template,
    is_sam,
    parse_template,
    read_template,
    read_template_text,
)
from lambdavision.cfn.functions import DEFAULT_RUNTIME, FunctionSpec, environment_variable, local_code
from lambdavision.cfn.intrinsics import LOCAL_ACCOUNT_ID, as_env_value
from lambdavision.cfn.model import (
    AppTemplate,
    build_app,
    find_default_template,
    load_app,
    load_functions,
    plain_template,
)
from lambdavision.cfn.parameters import check_overrides, parse_parameter_overrides
from lambdavision.cfn.routes import ApiRoute

__all__ = [
    "DEFAULT_RUNTIME",
    "LOCAL_ACCOUNT_ID",
    "SAM_TRANSFORM",
    "ApiRoute",
    "AppTemplate",
    "FunctionSpec",
    "TemplateError",
    "as_env_value",
    "build_app",
    "check_overrides",
    "dump_template",
    "environment_variable",
    "find_default_template",
    "is_sam",
    "load_app",
    "load_functions",
    "local_code",
    "parse_parameter_overrides",
    "parse_template",
    "plain_template",
    "read_template",
    "read_template_text",
]

"""Where the local commands' template types lived before `lambdavision.cfn`: a re-export only.

The template is read by `lambdavision.cfn` (import from there); env.json by `local.env_file`.
Kept so code written against the old import path (`from lambdavision.local.template import
FunctionSpec`) still imports; it holds no code of its own.
"""

from lambdavision.cfn import ApiRoute, AppTemplate, FunctionSpec
from lambdavision.core.errors import TemplateError

__all__ = ["ApiRoute", "AppTemplate", "FunctionSpec", "TemplateError"]

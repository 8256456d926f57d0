# Reference values from R's lme4 for tests/test_numerics.py (rescaled predictors,
# the three-level growth model).
#
# Run from the repository root:
#     Rscript tests/reference/make_reference_numerics.R
# It writes tests/reference/numerics.json. sleepstudy comes from lme4 itself;
# egsingle from mlmRev (the same rows as the course's egsingle CSV).

suppressPackageStartupMessages({
  library(lme4)
  library(mlmRev)
  library(jsonlite)
})

out_file <- file.path("tests", "reference", "numerics.json")
tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))

summarise <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  list(
    fixef = as.list(fixef(m)),
    std_error = as.list(sqrt(diag(as.matrix(vcov(m))))),
    loglik = as.numeric(logLik(m)),
    theta = unname(getME(m, "theta")),
    sigma = sigma(m),
    vcov = vc$vcov,
    singular = isSingular(m)
  )
}

out <- list()

# sleepstudy with Days in other units: lme4 rescaled by hand, so its optimum is reached
for (factor in c(1, 1000, 10000, 1e-6)) {
  d <- sleepstudy
  d$Days <- d$Days * factor
  m <- lmer(Reaction ~ Days + (Days | Subject), d, control = tight)
  out[[paste0("sleepstudy_days_x", format(factor, scientific = FALSE))]] <- summarise(m)
}

# Three-level growth model (Bryk & Raudenbush's egsingle, mlmRev)
eg <- egsingle
eg$childid <- factor(as.character(eg$childid))
eg$schoolid <- factor(as.character(eg$schoolid))
m3 <- lmer(math ~ year + (year | schoolid) + (year | childid:schoolid), eg, REML = TRUE, control = tight)
out$egsingle_growth <- summarise(m3)
out$egsingle_growth$nobs <- nobs(m3)
out$egsingle_growth$ngroups <- as.list(ngrps(m3))

write_json(out, out_file, digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("wrote", out_file, "\n")

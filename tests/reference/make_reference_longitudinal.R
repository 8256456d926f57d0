# Reference values from R's lme4 for the longitudinal chapter's growth model.
#
# Run from the repository root:
#     Rscript tests/reference/make_reference_longitudinal.R
# It reads data/sleepstudy.csv and writes tests/reference/longitudinal.json.
# lme4's own example (?sleepstudy) drops the adaptation and training days 0 and 1:
#     lmer(Reaction ~ Days + (Days | Subject), sleepstudy, subset = Days >= 2)

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

out_file <- file.path("tests", "reference", "longitudinal.json")
sleep <- read.csv(file.path("data", "sleepstudy.csv"), colClasses = c(Subject = "character"))
stopifnot(nrow(sleep) == 180)
ref <- lme4::sleepstudy
stopifnot(isTRUE(all.equal(sleep$Reaction, ref$Reaction)), all(sleep$Days == ref$Days))

tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
record <- function(formula, data, id) {
  m <- lmer(as.formula(formula), data = data, control = tight)
  vc <- as.data.frame(VarCorr(m), order = "cov.last")
  list(id = id, formula = formula, subset = "Days >= 2", reml = TRUE,
       nobs = nobs(m), loglik = as.numeric(logLik(m)),
       fixef = as.list(fixef(m)), std_error = as.list(sqrt(diag(as.matrix(vcov(m))))),
       sdcor = vc$sdcor, vcov = vc$vcov, sigma = sigma(m))
}
study <- subset(sleep, Days >= 2)
study$time <- study$Days - 2
study$time_mid <- study$Days - 5.5
models <- list(
  sleep_restricted_days = record("Reaction ~ Days + (Days | Subject)", study, "sleep_restricted_days"),
  sleep_restricted_time = record("Reaction ~ time + (time | Subject)", study, "sleep_restricted_time"),
  sleep_restricted_mid = record("Reaction ~ time_mid + (time_mid | Subject)", study, "sleep_restricted_mid"),
  sleep_restricted_time_uncorr = record("Reaction ~ time + (time || Subject)", study, "sleep_restricted_time_uncorr"),
  sleep_restricted_mid_uncorr = record("Reaction ~ time_mid + (time_mid || Subject)", study, "sleep_restricted_mid_uncorr")
)
out <- list(meta = list(r = R.version.string, lme4 = as.character(packageVersion("lme4")),
                        date = format(Sys.Date()),
                        derived = list(time = "Days - 2", time_mid = "Days - 5.5")),
            models = models)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), out_file)
cat("wrote", out_file, "\n")

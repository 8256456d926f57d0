# Reference values from R's lme4 for the three-level models (egsingle).
#
# Run from the repository root:
#     Rscript tests/reference/make_reference_threelevel.R
# It reads data/egsingle.csv and writes tests/reference/threelevel.json.
# R is not needed to run the tests: they read the committed JSON.
#
# The data are prepared as mlmcourse.datasets.load() prepares them: id columns
# are character, every other quoted column is a factor whose levels are sorted
# in code-point ("C") order, unquoted columns are numbers.
#
# Every model is fitted twice: with lme4's defaults, and with a tight optimizer
# control (bobyqa, rhoend = 1e-12), whose numbers are the optimum the Python
# tests compare with.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

source(file.path("tests", "reference", "course_data.R"))
out_file <- file.path("tests", "reference", "threelevel.json")

spec <- registry$egsingle
eg <- read_course_csv(spec$files, spec$ids)
stopifnot(nrow(eg) == 7230, length(unique(eg$schoolid)) == 60, length(unique(eg$childid)) == 1721)
# Each child belongs to one school, so (1 | childid) and (1 | childid:schoolid) are the same term.
schools_per_child <- tapply(eg$schoolid, eg$childid, function(s) length(unique(s)))
stopifnot(all(schools_per_child == 1))
# The same rows as mlmRev's copy of the data.
if (requireNamespace("mlmRev", quietly = TRUE)) {
  ref <- mlmRev::egsingle
  stopifnot(isTRUE(all.equal(eg$math, ref$math)), isTRUE(all.equal(eg$year, ref$year)),
            all(eg$childid == as.character(ref$childid)))
}

tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
named <- function(x) as.list(x)
rows_of <- function(df) {
  lapply(seq_len(nrow(df)), function(i) lapply(df[i, , drop = FALSE], function(v) {
    v <- if (is.factor(v)) as.character(v) else v
    if (is.na(v)) NULL else unname(v)
  }))
}
varcorr_rows <- function(m) {
  vc <- as.data.frame(VarCorr(m), order = "cov.last")
  vc$var1 <- as.character(vc$var1)
  vc$var2 <- as.character(vc$var2)
  rows_of(vc)
}
summary_of <- function(m, reml) {
  V <- as.matrix(vcov(m))
  ll <- logLik(m)
  list(
    loglik = as.numeric(ll),
    objective = if (reml) REMLcrit(m) else deviance(m),
    df = attr(ll, "df"),
    fixef = named(fixef(m)),
    std_error = named(sqrt(diag(V))),
    varcorr = varcorr_rows(m),
    sigma = sigma(m),
    theta = named(getME(m, "theta")),
    singular = isSingular(m)
  )
}

records <- list()
fits <- list()
fit_model <- function(id, formula, reml = TRUE, notes = NULL) {
  f <- as.formula(formula)
  warns <- character(0)
  t0 <- proc.time()[["elapsed"]]
  m <- withCallingHandlers(lmer(f, data = eg, REML = reml), warning = function(w) {
    warns <<- c(warns, conditionMessage(w))
    invokeRestart("muffleWarning")
  })
  seconds <- proc.time()[["elapsed"]] - t0
  mt <- suppressWarnings(update(m, control = tight))
  rec <- c(list(id = id, data = "egsingle", formula = formula, reml = reml,
                nobs = nobs(m), ngroups = named(ngrps(m))),
           list(default = c(summary_of(m, reml), list(warnings = I(warns), seconds = seconds))),
           list(tight = c(summary_of(mt, reml),
                          list(control = "lmerControl(optimizer = \"bobyqa\", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))"))))
  if (!is.null(notes)) rec$notes <- notes
  records[[id]] <<- rec
  fits[[id]] <<- mt
  invisible(mt)
}

growth_re <- "(year | schoolid) + (year | childid:schoolid)"
fit_model("eg_null", "math ~ 1 + (1 | schoolid/childid)",
          notes = "Unconditional three-level model without time: variance between schools, between children within schools, and between years within children.")
fit_model("eg_null_explicit", "math ~ 1 + (1 | schoolid) + (1 | childid:schoolid)",
          notes = "Same model as eg_null, with the nesting written out.")
fit_model("eg_growth_ri", "math ~ year + (1 | schoolid/childid)",
          notes = "Linear growth with random intercepts only.")
fit_model("eg_growth", paste("math ~ year +", growth_re),
          notes = "Unconditional linear growth model (Raudenbush & Bryk 2002, ch. 8). lme4 gives variances of about 0.30 (residual), 0.64 and 0.011 (child intercept and slope), 0.17 and 0.011 (school intercept and slope).")
fit_model("eg_growth_ml", paste("math ~ year +", growth_re), reml = FALSE)
fit_model("eg_growth_ri_ml", "math ~ year + (1 | schoolid/childid)", reml = FALSE)
fit_model("eg_lowinc", paste("math ~ year * lowinc +", growth_re),
          notes = "School poverty (percentage of low-income students) as a predictor of the school's mean status and mean growth rate.")
fit_model("eg_full", paste("math ~ year * (black + hispanic + lowinc) +", growth_re),
          notes = "Child ethnicity (level 2) and school poverty (level 3) as predictors of status and growth.")
fit_model("eg_female", paste("math ~ year * female +", growth_re),
          notes = "A time-invariant child characteristic as a predictor of change.")

# Likelihood-ratio test of the random slopes (ML fits), as anova() prints it.
a <- anova(fits$eg_growth_ri_ml, fits$eg_growth_ml)
lrt <- list(m0 = "eg_growth_ri_ml", m1 = "eg_growth_ml", chisq = a$Chisq[2], df = a$Df[2],
            p_value = a[["Pr(>Chisq)"]][2])

out <- list(
  meta = list(
    r = R.version.string,
    lme4 = as.character(packageVersion("lme4")),
    matrix = as.character(packageVersion("Matrix")),
    date = format(Sys.Date()),
    sha256 = named(setNames(
      vapply(spec$files, function(f) {
        digest <- system2("sha256sum", file.path(data_dir, f), stdout = TRUE)
        strsplit(digest, " ")[[1]][1]
      }, character(1)), spec$files))
  ),
  models = records,
  lrt = lrt
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"), out_file)
cat("wrote", out_file, "\n")

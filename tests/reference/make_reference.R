# Reference values from R's lme4 for the Python tests.
#
# Run from the repository root:
#     Rscript tests/reference/make_reference.R
# It reads the CSV files in data/ and writes tests/reference/lme4.json.
# R is not needed to run the tests: they read the committed JSON.
#
# The data are prepared exactly as mlmcourse.datasets.load() prepares them:
#   * ids, files and subsets come from data/datasets.json;
#   * id columns are character;
#   * every other quoted column is a factor whose levels are sorted in
#     code-point ("C") order, the order Python's sorted() gives;
#   * unquoted columns are numbers;
#   * "." in column names becomes "_".

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
  library(nlme, include.only = character(0)) # only nlme::lme, for one cross-check
})

started <- proc.time()
source(file.path("tests", "reference", "course_data.R"))
out_file <- file.path("tests", "reference", "lme4.json")

# Derived columns: name -> R expression evaluated inside the data frame.
hsb_derived <- list(
  cses      = "SES - MEANSES",
  meanses_s = "ave(SES, School)",
  cses_s    = "SES - meanses_s",
  sector    = "as.integer(Sector == \"Catholic\")"
)
add_derived <- function(d, derived) {
  for (nm in names(derived)) d[[nm]] <- eval(parse(text = derived[[nm]]), d)
  d
}

datasets <- list()
for (nm in c("hsb", "hsb40", "sleepstudy", "bdf", "exam", "scotssec", "oxboys")) {
  datasets[[nm]] <- load_course(nm)
}
datasets$hsb   <- add_derived(datasets$hsb, hsb_derived)
datasets$hsb40 <- add_derived(datasets$hsb40, hsb_derived)

scs_hs40 <- c("1317", "1906", "2208", "2458", "2626", "2629", "2639", "2658", "2771", "3013",
               "3610", "3992", "4292", "4511", "4530", "4868", "5619", "5640", "5650", "5720",
               "5761", "5762", "6074", "6484", "6897", "7172", "7232", "7342", "7345", "7688",
               "7697", "7890", "7919", "8531", "8627", "8707", "8854", "8874", "9550", "9586")
stopifnot(setequal(registry$hsb40$subset, scs_hs40))
stopifnot(nrow(datasets$hsb) == 7185, length(unique(datasets$hsb$School)) == 160)
stopifnot(nrow(datasets$hsb40) == 1977, length(unique(datasets$hsb40$School)) == 40)
stopifnot(levels(datasets$hsb$Sector)[1] == "Catholic", levels(datasets$exam$sex)[1] == "F")
stopifnot(is.factor(datasets$bdf$sex), is.factor(datasets$hsb$HIMINTY))

# Is classNR nested in schoolNR (each class in exactly one school)?
bdf <- datasets$bdf
schools_per_class <- tapply(bdf$schoolNR, bdf$classNR, function(s) length(unique(s)))
classes_per_school <- tapply(bdf$classNR, bdf$schoolNR, function(s) length(unique(s)))
bdf_nesting <- list(
  classes_nested_in_schools = all(schools_per_class == 1),
  n_classes = length(schools_per_class),
  n_schools = length(classes_per_school),
  schools_with_more_than_one_class = I(names(classes_per_school)[classes_per_school > 1])
)
stopifnot(bdf_nesting$classes_nested_in_schools)

# ---------------------------------------------------------------------------
# Fitting and extracting
# ---------------------------------------------------------------------------

tight_control <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
fits <- list()
records <- list()
fit_time <- numeric(0)

named <- function(x) as.list(x) # jsonlite drops the names of atomic vectors
num_or_null <- function(x) if (length(x) == 0 || is.na(x)) NULL else unname(x)

rows_of <- function(df) {
  lapply(seq_len(nrow(df)), function(i) {
    row <- lapply(df[i, , drop = FALSE], function(v) {
      v <- if (is.factor(v)) as.character(v) else v
      if (is.na(v)) NULL else unname(v)
    })
    row
  })
}

fit_model <- function(id, data, formula, reml = TRUE, ranef = FALSE, notes = NULL) {
  d <- datasets[[data]]
  f <- as.formula(formula)
  warnings_seen <- character(0)
  messages_seen <- character(0)
  t0 <- proc.time()[["elapsed"]]
  m <- withCallingHandlers(
    lmer(f, data = d, REML = reml),
    warning = function(w) {
      warnings_seen <<- c(warnings_seen, conditionMessage(w))
      invokeRestart("muffleWarning")
    },
    message = function(msg) {
      messages_seen <<- c(messages_seen, trimws(conditionMessage(msg)))
      invokeRestart("muffleMessage")
    }
  )
  fit_time[[id]] <<- proc.time()[["elapsed"]] - t0
  fits[[id]] <<- m

  ll <- logLik(m)
  V <- as.matrix(vcov(m))
  vc <- as.data.frame(VarCorr(m), order = "cov.last")
  vc$var1 <- as.character(vc$var1)
  vc$var2 <- as.character(vc$var2)
  conv <- m@optinfo$conv
  rec <- list(
    id = id,
    data = data,
    formula = formula,
    reml = reml,
    loglik = as.numeric(ll),
    objective = if (reml) REMLcrit(m) else deviance(m),
    aic = AIC(m),
    bic = BIC(m),
    df = attr(ll, "df"),
    nobs = nobs(m),
    ngroups = named(ngrps(m)),
    fixef = named(fixef(m)),
    std_error = named(sqrt(diag(V))),
    vcov = list(names = I(colnames(V)),
                values = lapply(seq_len(nrow(V)), function(i) I(unname(V[i, ])))),
    varcorr = rows_of(vc),
    sigma = sigma(m),
    theta = named(getME(m, "theta")),
    singular = isSingular(m),
    converged = list(
      ok = length(conv$lme4$messages) == 0 && length(warnings_seen) == 0 &&
        identical(as.integer(conv$opt), 0L),
      optimizer = m@optinfo$optimizer,
      opt_code = conv$opt,
      feval = m@optinfo$feval,
      lme4_messages = I(as.character(unlist(conv$lme4$messages))),
      optimizer_warnings = I(as.character(unlist(m@optinfo$warnings))),
      fit_warnings = I(warnings_seen),
      fit_messages = I(messages_seen)
    )
  )
  # The same model refitted with a much tighter optimizer tolerance: how far
  # lme4's default fit is from the optimum (useful to choose test tolerances).
  mt <- suppressMessages(suppressWarnings(update(m, control = tight_control)))
  rec$tight <- list(
    control = "lmerControl(optimizer = \"bobyqa\", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))",
    loglik = as.numeric(logLik(mt)),
    objective = if (reml) REMLcrit(mt) else deviance(mt),
    theta = named(getME(mt, "theta")),
    sigma = sigma(mt),
    fixef = named(fixef(mt)),
    objective_gain = (if (reml) REMLcrit(m) else deviance(m)) -
      (if (reml) REMLcrit(mt) else deviance(mt)),
    max_abs_diff_theta = max(abs(getME(mt, "theta") - getME(m, "theta"))),
    max_rel_diff_fixef = max(abs(fixef(mt) - fixef(m)) / pmax(abs(fixef(mt)), 1e-8)),
    rel_diff_sigma = abs(sigma(mt) - sigma(m)) / sigma(mt)
  )
  if (ranef) {
    re <- as.data.frame(ranef(m, condVar = TRUE))
    re <- re[, c("grpvar", "term", "grp", "condval", "condsd")]
    rec$ranef <- rows_of(re)
  }
  if (!is.null(notes)) rec$notes <- notes
  records[[id]] <<- rec
  invisible(m)
}

# ---------------------------------------------------------------------------
# Sanity check against the SCS course text (nlme output for the 40-school data)
# ---------------------------------------------------------------------------

chk <- lmer(MathAch ~ 1 + (1 | School), datasets$hsb40)
chk_vals <- c(fixef(chk)[[1]], attr(VarCorr(chk)$School, "stddev")[[1]], sigma(chk),
              as.numeric(logLik(chk)))
chk_want <- c(12.60468, 2.836278, 6.296759, -6489.969)
# The SCS course text prints 7 significant digits from nlme; lme4's default optimizer
# stops within about 3e-7 (relative) of the optimum in the SD, so allow 1e-6.
if (any(abs(chk_vals - chk_want) > 1e-6 * abs(chk_want))) {
  stop("hsb40 null model does not reproduce the SCS course text: got ",
       paste(format(chk_vals, digits = 10), collapse = ", "))
}

# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------

# hsb (Raudenbush & Bryk 2002, chapter 4)
fit_model("hsb_null", "hsb", "MathAch ~ 1 + (1 | School)", ranef = TRUE,
          notes = "Raudenbush & Bryk (2002) Table 4.2: gamma00 12.64, tau00 8.61, sigma2 39.15")
fit_model("hsb_null_ml", "hsb", "MathAch ~ 1 + (1 | School)", reml = FALSE)
fit_model("hsb_meanses", "hsb", "MathAch ~ MEANSES + (1 | School)",
          notes = "Raudenbush & Bryk (2002) Table 4.3 (means as outcomes): gamma00 12.65, gamma01 5.86, tau00 2.64, sigma2 39.16")
fit_model("hsb_meanses_s", "hsb", "MathAch ~ meanses_s + (1 | School)")
fit_model("hsb_rc", "hsb", "MathAch ~ cses + (1 + cses | School)", ranef = TRUE,
          notes = "Raudenbush & Bryk (2002) Table 4.4: gamma00 12.64, gamma10 2.19, tau00 8.68, tau11 0.69, tau01 0.05, sigma2 36.70")
fit_model("hsb_rc_ml", "hsb", "MathAch ~ cses + (1 + cses | School)", reml = FALSE)
fit_model("hsb_rc_s", "hsb", "MathAch ~ cses_s + (1 + cses_s | School)")
fit_model("hsb_rc_uncorr", "hsb", "MathAch ~ cses + (1 + cses || School)")
fit_model("hsb_rc_split", "hsb", "MathAch ~ cses + (1 | School) + (0 + cses | School)")
fit_model("hsb_ri_cses", "hsb", "MathAch ~ cses + (1 | School)")
isao <- "MathAch ~ MEANSES + sector + cses + MEANSES:cses + sector:cses + (1 + cses | School)"
fit_model("hsb_isao", "hsb", isao,
          notes = "Raudenbush & Bryk (2002) Table 4.5: gamma00 12.11, gamma01 (MEANSES) 5.34, gamma02 (sector) 1.22, gamma10 (cses) 2.94, gamma11 (MEANSES:cses) 1.04, gamma12 (sector:cses) -1.64, tau00 2.38, tau11 0.10, tau01 0.19, sigma2 36.72")
fit_model("hsb_isao_s", "hsb",
          "MathAch ~ meanses_s + sector + cses_s + meanses_s:cses_s + sector:cses_s + (1 + cses_s | School)")
fit_model("hsb_isao_ml", "hsb", isao, reml = FALSE)
fit_model("hsb_factor", "hsb", "MathAch ~ MEANSES * cses + Sector * cses + (1 + cses | School)")

# hsb40: the 40-school subset of the SCS course text
scs_oneway_note <- paste(
  "The SCS course text prints (nlme::lme(mathach ~ 1, hs, random = ~ 1 | sid), REML):",
  "AIC 12985.94, BIC 13002.71, logLik -6489.969; SD (Intercept) 2.836278, Residual 6.296759;",
  "(Intercept) 12.60468, Std.Error 0.4711941; ranef P5762C -7.30651445, P2639C -5.36017663,",
  "P8854C -7.24846197, P6484C 0.26973942, C2208C 2.58744359, C2658C 0.71334861,",
  "C1906C 3.09104215, C9586G 2.08485465 (sid = sector letter + School + sex-mix letter).",
  "nlme's BIC counts n - p = 1976 observations under REML, lme4's counts nobs = 1977.")
fit_model("hs40_null", "hsb40", "MathAch ~ 1 + (1 | School)", ranef = TRUE, notes = scs_oneway_note)
fit_model("hs40_null_ml", "hsb40", "MathAch ~ 1 + (1 | School)", reml = FALSE)
fit_model("hs40_ses_sector", "hsb40", "MathAch ~ SES * Sector + (1 + SES | School)", ranef = TRUE)
fit_model("hs40_ctx", "hsb40", "MathAch ~ (cses_s + meanses_s) * Sector + (1 + cses_s | School)")

# Models of the SCS course text (Monette, 'Hierarchical models to mixed models').
# Its only lme() call with printed output is fit.oneway.re; the other models are
# written there with placeholders (Y, X, W, cvar(X, school), dvar(X, school))
# in its 'From the simple to the complex' table and its R examples
# lme(y ~ x * w, hs, random = ~ 1 + x | school); here Y = MathAch, X = SES,
# W = Sector, cvar(SES, School) = meanses_s, dvar(SES, School) = cses_s.
no_numbers <- "The SCS course text gives this model's formula only (placeholders Y = MathAch, X = SES, W = Sector) and prints no numbers for it."
fit_model("hs40_scs_oneway", "hsb40", "MathAch ~ 1 + (1 | School)", ranef = TRUE,
          notes = paste(scs_oneway_note, "Same model as hs40_null."))
fit_model("hs40_scs_means_outcomes", "hsb40", "MathAch ~ 1 + Sector + (1 | School)",
          notes = paste("Means as outcomes: Y ~ 1 + W, ~ 1 | school.", no_numbers))
fit_model("hs40_scs_ancova", "hsb40", "MathAch ~ 1 + SES + (1 | School)",
          notes = paste("One way ANCOVA: Y ~ 1 + X, ~ 1 | school.", no_numbers))
fit_model("hs40_scs_rc", "hsb40", "MathAch ~ 1 + SES + (1 + SES | School)",
          notes = paste("Random coefficients: Y ~ 1 + X, ~ 1 + X | school.", no_numbers))
fit_model("hs40_scs_isao", "hsb40", "MathAch ~ SES * Sector + (1 + SES | School)",
          notes = paste("Intercepts and slopes as outcomes: lme(y ~ x * w, hs, random = ~ 1 + x | school).",
                        no_numbers, "Same model as hs40_ses_sector."))
fit_model("hs40_scs_nonrandom_slopes", "hsb40", "MathAch ~ SES * Sector + (1 | School)",
          notes = paste("Non random slopes: Y ~ 1 + X + W + X:W, ~ 1 | school (its line in the SCS course text reads lm(y ~ x * w, hs, random = ~ 1 | school), a slip for lme).",
                        no_numbers))
fit_model("hs40_scs_parallel", "hsb40", "MathAch ~ SES + Sector + (1 + SES | School)",
          notes = paste("Parallel mean slopes: Y ~ 1 + X + W, ~ 1 + X | school.", no_numbers))
fit_model("hs40_scs_ctx_cwg", "hsb40", "MathAch ~ 1 + meanses_s + cses_s + (1 + cses_s | School)",
          notes = paste("Contextual cluster mean with CWG variable and random CWG slopes: Y ~ 1 + cvar(X, school) + dvar(X, school), ~ 1 + dvar(X, school) | school.", no_numbers))
fit_model("hs40_scs_ctx_raw", "hsb40", "MathAch ~ 1 + meanses_s + SES + (1 + cses_s | School)",
          notes = paste("Contextual cluster mean with raw variable and random CWG slopes: Y ~ 1 + cvar(X, school) + X, ~ 1 + dvar(X, school) | school.", no_numbers))
fit_model("hs40_scs_ctx_isao", "hsb40", "MathAch ~ 1 + (meanses_s + cses_s) * Sector + (1 + cses_s | School)",
          notes = paste("Intercepts and slopes as outcomes with contextual cluster mean and CWG variable: Y ~ 1 + (cvar(X, school) + dvar(X, school)) * W, ~ 1 + dvar(X, school) | school.",
                        no_numbers, "Same model as hs40_ctx with the terms in another order."))

# nlme cross-check of the one printed fit of the SCS course text (same estimator, other software)
scs_lme <- nlme::lme(MathAch ~ 1, data = datasets$hsb40, random = ~ 1 | School, method = "REML")
records$hs40_scs_oneway$nlme_check <- list(
  call = "nlme::lme(MathAch ~ 1, hsb40, random = ~ 1 | School)",
  loglik = as.numeric(logLik(scs_lme)),
  aic = AIC(scs_lme),
  bic = BIC(scs_lme),
  fixef = named(nlme::fixef(scs_lme)),
  std_error = named(sqrt(diag(scs_lme$varFix))),
  sd_intercept = sqrt(as.numeric(nlme::getVarCov(scs_lme))),
  sigma = scs_lme$sigma
)

# sleepstudy
fit_model("sleep_rs", "sleepstudy", "Reaction ~ Days + (Days | Subject)", ranef = TRUE)
fit_model("sleep_rs_ml", "sleepstudy", "Reaction ~ Days + (Days | Subject)", reml = FALSE)
fit_model("sleep_uncorr", "sleepstudy", "Reaction ~ Days + (Days || Subject)")
fit_model("sleep_ri", "sleepstudy", "Reaction ~ Days + (1 | Subject)")
fit_model("sleep_slope_only", "sleepstudy", "Reaction ~ Days + (0 + Days | Subject)")

# bdf (Snijders & Bosker)
fit_model("bdf_null", "bdf", "langPOST ~ 1 + (1 | schoolNR)")
fit_model("bdf_iq", "bdf", "langPOST ~ IQ_verb + (1 | schoolNR)")
fit_model("bdf_rs", "bdf", "langPOST ~ IQ_verb + ses + (1 + IQ_verb | schoolNR)",
          notes = "IQ_verb is not centred and the intercept-slope correlation is near -1: with lme4 1.1-31 the default fit stops short of the optimum (convergence warning); the 'tight' block holds the optimum.")
fit_model("bdf_nested", "bdf", "langPOST ~ IQ_verb + (1 | schoolNR/classNR)",
          notes = "classNR is nested in schoolNR (every class lies in one school; 131 schools, 133 classes: only schools 40 and 60 have two classes). The class variance is estimated at about 0 (singular fit).")
fit_model("bdf_interaction_term", "bdf", "langPOST ~ IQ_verb + (1 | schoolNR) + (1 | schoolNR:classNR)",
          notes = "Same model as bdf_nested written out; the class factor is named schoolNR:classNR here, classNR:schoolNR there.")

# exam (Goldstein et al.)
fit_model("exam_null", "exam", "normexam ~ 1 + (1 | school)")
fit_model("exam_rs", "exam", "normexam ~ standLRT + (1 + standLRT | school)", ranef = TRUE)
fit_model("exam_ctx", "exam", "normexam ~ standLRT + schavg + sex + schgend + (1 | school)")
fit_model("exam_cli", "exam", "normexam ~ standLRT * schavg + (1 + standLRT | school)")

# scotssec (cross-classified)
fit_model("scots_crossed", "scotssec", "attain ~ verbal + sex + social + (1 | primary) + (1 | second)",
          ranef = TRUE)
fit_model("scots_crossed_ml", "scotssec", "attain ~ verbal + sex + social + (1 | primary) + (1 | second)",
          reml = FALSE)
fit_model("scots_primary", "scotssec", "attain ~ verbal + sex + social + (1 | primary)")
fit_model("scots_null_crossed", "scotssec", "attain ~ 1 + (1 | primary) + (1 | second)")

# oxboys
fit_model("oxboys_rs", "oxboys", "height ~ age + (1 + age | Subject)")

# singular fits (boundary of the parameter space)
fit_model("singular_bdf_ses_slope", "bdf", "langPOST ~ IQ_verb + ses + (1 + ses | schoolNR)",
          notes = "Random SES slope across schools: its SD is tiny and its correlation with the intercept is -1 (boundary fit).")
fit_model("singular_bdf_ses_uncorr", "bdf", "langPOST ~ IQ_verb + ses + (1 + ses || schoolNR)",
          notes = "Uncorrelated random SES slope: its variance is estimated as exactly 0 (theta = 0).")
fit_model("singular_hs40_sex_slope", "hsb40", "MathAch ~ Sex * cses_s + (1 + Sex | School)",
          notes = "Random Sex effect across schools: correlation with the intercept is +1 (boundary fit).")

# ---------------------------------------------------------------------------
# Likelihood-ratio tests
# ---------------------------------------------------------------------------

anova_rows <- function(a, names_in_order) {
  a <- as.data.frame(a)
  cols <- colnames(a)
  dev_col <- intersect(c("deviance", "-2*log(L)"), cols)[1]
  lapply(seq_len(nrow(a)), function(i) {
    list(
      model = rownames(a)[i],
      npar = a$npar[i],
      aic = a$AIC[i],
      bic = a$BIC[i],
      loglik = a$logLik[i],
      deviance = a[[dev_col]][i],
      chisq = num_or_null(a$Chisq[i]),
      df = num_or_null(a$Df[i]),
      p_value = num_or_null(a[["Pr(>Chisq)"]][i])
    )
  })
}

lrt_pairs <- list(
  c("hsb_ri_cses", "hsb_rc"),
  c("sleep_ri", "sleep_rs"),
  c("scots_primary", "scots_crossed")
)
lrt <- list()
for (p in lrt_pairs) {
  m0 <- fits[[p[1]]]
  m1 <- fits[[p[2]]]
  a_norefit <- eval(substitute(anova(A, B, refit = FALSE), list(A = as.name(p[1]), B = as.name(p[2]))),
                    setNames(list(m0, m1), p))
  a_refit <- suppressMessages(
    eval(substitute(anova(A, B), list(A = as.name(p[1]), B = as.name(p[2]))), setNames(list(m0, m1), p)))
  lrt[[paste(p, collapse = "_vs_")]] <- list(
    m0 = p[1],
    m1 = p[2],
    columns = I(colnames(as.data.frame(a_refit))),
    refit_false = anova_rows(a_norefit),
    refit_ml = anova_rows(a_refit)
  )
}

# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

dataset_info <- function(name, derived = setNames(list(), character(0))) {
  d <- datasets[[name]]
  spec <- registry[[name]]
  grp <- spec$group
  list(
    files = I(spec$files),
    ids = I(spec$ids),
    subset = if (is.null(spec$subset)) NULL else I(spec$subset),
    nrow = nrow(d),
    ngroups = setNames(lapply(grp, function(g) length(unique(d[[g]]))), grp),
    factors = lapply(Filter(is.factor, d), function(v) I(levels(v))),
    derived = derived
  )
}

sha256 <- function(f) {
  out <- tryCatch(system2("sha256sum", file.path(data_dir, f), stdout = TRUE), error = function(e) NA)
  if (length(out) == 0 || is.na(out[1])) NULL else strsplit(out[1], " ")[[1]][1]
}
csv_files <- sort(unique(unlist(lapply(registry, `[[`, "files"))))

elapsed <- (proc.time() - started)[["elapsed"]]
result <- list(
  meta = list(
    r_version = R.version.string,
    lme4_version = as.character(packageVersion("lme4")),
    matrix_version = as.character(packageVersion("Matrix")),
    nlme_version = as.character(packageVersion("nlme")),
    jsonlite_version = as.character(packageVersion("jsonlite")),
    date = format(Sys.time(), "%Y-%m-%d", tz = "UTC"),
    script = "tests/reference/make_reference.R",
    lmer_control = "lme4 defaults (lmerControl(): optimizer nloptwrap, BOBYQA)",
    factor_levels = "sorted in code-point order, first level is the reference level",
    precision = "15 significant digits",
    data_sha256 = setNames(lapply(csv_files, sha256), csv_files)
  ),
  datasets = list(
    hsb = dataset_info("hsb", hsb_derived),
    hsb40 = c(dataset_info("hsb40", hsb_derived),
              list(derived_note = "meanses_s and cses_s are recomputed within the subset; schools are whole, so the values equal those of hsb.")),
    sleepstudy = dataset_info("sleepstudy"),
    bdf = c(dataset_info("bdf"), list(nesting = bdf_nesting)),
    exam = dataset_info("exam"),
    scotssec = dataset_info("scotssec"),
    oxboys = dataset_info("oxboys")
  ),
  models = records,
  lrt = lrt
)

json <- toJSON(result, auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = TRUE)
writeLines(json, out_file)
cat(sprintf("wrote %s: %d models, %d likelihood-ratio tests, %.1f s\n",
            out_file, length(records), length(lrt), elapsed))

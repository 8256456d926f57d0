# Reference values for small-sample inference, profile intervals and R2.
#
# Run from the repository root:
#     Rscript tests/reference/make_reference_inference.R
# It reads the CSV files in data/ (prepared as make_reference.R prepares them)
# and writes tests/reference/inference.json with, per model:
#   * lmerTest's coefficient table with Satterthwaite df (summary()), and for
#     REML fits the Kenward-Roger table (summary(m, ddf = "Kenward-Roger"))
#     and pbkrtest's adjusted covariance vcovAdj();
#   * lmerTest's type III anova() with Satterthwaite (and Kenward-Roger) df;
#   * lme4's profile confidence intervals confint(m, method = "profile");
#   * performance::r2_nakagawa() (marginal and conditional R2).
# R is not needed to run the tests: they read the committed JSON.

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
  library(performance)
  library(jsonlite)
})

source(file.path("tests", "reference", "course_data.R"))
out_file <- file.path("tests", "reference", "inference.json")

derived <- list(hsb = c(cses = "SES - MEANSES", meanses_s = "ave(SES, School)", cses_s = "SES - meanses_s"))
derived$hsb40 <- derived$hsb
datasets <- list()
for (nm in c("hsb", "hsb40", "sleepstudy", "bdf", "exam", "scotssec")) {
  d <- load_course(nm)
  for (col in names(derived[[nm]])) d[[col]] <- eval(parse(text = derived[[nm]][[col]]), d)
  datasets[[nm]] <- d
}
stopifnot(nrow(datasets$hsb40) == 1977, nrow(datasets$sleepstudy) == 180)

# ---------------------------------------------------------------- extracting
named <- function(x) as.list(x)
table_of <- function(tab, cols, names_to = NULL) {
  out <- lapply(cols, function(cl) unname(tab[, cl]))
  names(out) <- if (is.null(names_to)) cols else names_to
  c(list(term = I(rownames(tab))), out)
}
matrix_of <- function(V) {
  V <- as.matrix(V)
  list(names = I(colnames(V)), values = lapply(seq_len(nrow(V)), function(i) I(unname(V[i, ]))))
}
coef_cols <- c("Estimate", "Std. Error", "df", "t value", "Pr(>|t|)")
coef_names <- c("estimate", "std_error", "df", "statistic", "p_value")
anova_cols <- c("NumDF", "DenDF", "F value", "Pr(>F)")
anova_names <- c("num_df", "den_df", "statistic", "p_value")

models <- list()
timing <- list()
add_model <- function(id, data, formula, reml = TRUE, kr = FALSE, anova = FALSE, profile = FALSE,
                      r2 = TRUE) {
  t0 <- proc.time()[["elapsed"]]
  m <- lmerTest::lmer(as.formula(formula), data = datasets[[data]], REML = reml,
                      control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5)))
  rec <- list(id = id, data = data, formula = formula, reml = reml,
              theta = named(getME(m, "theta")), sigma = sigma(m),
              satterthwaite = table_of(coef(summary(m)), coef_cols, coef_names))
  if (kr) {
    rec$kenward_roger <- table_of(coef(summary(m, ddf = "Kenward-Roger")), coef_cols, coef_names)
    rec$vcov_kenward_roger <- matrix_of(pbkrtest::vcovAdj(m))
  }
  if (anova) {
    rec$anova_satterthwaite <- table_of(anova(m, type = 3), anova_cols, anova_names)
    if (kr) rec$anova_kenward_roger <- table_of(anova(m, type = 3, ddf = "Kenward-Roger"), anova_cols, anova_names)
  }
  if (profile) {
    ci <- suppressMessages(suppressWarnings(confint(m, method = "profile", level = 0.95, oldNames = FALSE)))
    rec$profile <- list(term = I(rownames(ci)), conf_low = unname(ci[, 1]), conf_high = unname(ci[, 2]))
  }
  if (r2) {
    r <- performance::r2_nakagawa(m)
    rec$r2_nakagawa <- list(marginal = unname(r$R2_marginal), conditional = unname(r$R2_conditional))
  }
  models[[id]] <<- rec
  timing[[id]] <<- proc.time()[["elapsed"]] - t0
  write_out()
  message(id, ": ", round(timing[[id]], 1), " s")
  invisible(m)
}

write_out <- function() {
  out <- list(
    meta = list(
      r = R.version.string,
      versions = named(vapply(c("lme4", "lmerTest", "pbkrtest", "performance", "numDeriv"),
                              function(p) as.character(packageVersion(p)), "")),
      date = format(Sys.Date()),
      seconds = named(unlist(timing)),
      control = "lmerControl(optimizer = \"bobyqa\", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))"
    ),
    models = models
  )
  writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null", na = "null"), out_file)
}

# Balanced (sleepstudy: 18 subjects x 10 days)
add_model("sleep_rs", "sleepstudy", "Reaction ~ Days + (Days | Subject)", kr = TRUE, anova = TRUE, profile = TRUE)
add_model("sleep_ri", "sleepstudy", "Reaction ~ Days + (1 | Subject)", kr = TRUE, profile = TRUE)
add_model("sleep_rs_ml", "sleepstudy", "Reaction ~ Days + (Days | Subject)", reml = FALSE, profile = TRUE)
add_model("sleep_uncorr", "sleepstudy", "Reaction ~ Days + (Days || Subject)", kr = TRUE)
# Unbalanced schools (hsb40: 40 schools, 1977 students), a factor interaction
add_model("hs40_null", "hsb40", "MathAch ~ 1 + (1 | School)", kr = TRUE, profile = TRUE)
add_model("hs40_nonrandom_slopes", "hsb40", "MathAch ~ SES * Sector + (1 | School)", kr = TRUE, anova = TRUE)
add_model("hs40_ses_sector", "hsb40", "MathAch ~ SES * Sector + (1 + SES | School)", kr = TRUE, anova = TRUE)
add_model("hs40_ctx", "hsb40", "MathAch ~ (cses_s + meanses_s) * Sector + (1 + cses_s | School)", anova = TRUE)
# All 160 schools (Satterthwaite only: pbkrtest's dense 7185 x 7185 matrices are too big)
add_model("hsb_rc", "hsb", "MathAch ~ cses + (1 + cses | School)")
add_model("hsb_meanses", "hsb", "MathAch ~ MEANSES + (1 | School)")
# Nested (pupils in classes in schools), a factor with 4 levels, crossed (primary x secondary schools)
add_model("bdf_nested", "bdf", "langPOST ~ IQ_verb + (1 | schoolNR/classNR)")
add_model("bdf_denomina", "bdf", "langPOST ~ IQ_verb * denomina + sex + (1 + IQ_verb | schoolNR)", anova = TRUE)
add_model("scots_crossed", "scotssec", "attain ~ verbal + sex + social + (1 | primary) + (1 | second)",
          anova = TRUE)
# A cross-level interaction with a 3-level school factor
add_model("exam_schgend", "exam", "normexam ~ standLRT * schgend + sex + (1 + standLRT | school)", anova = TRUE)
# The slower ones last: Kenward-Roger on 2,000-3,500 rows, profiles with several variance parameters
add_model("hs40_ses_sector_kr", "hsb40", "MathAch ~ SES * Sector + (1 + SES | School)", kr = TRUE,
          profile = TRUE, r2 = FALSE)
add_model("bdf_denomina_kr", "bdf", "langPOST ~ IQ_verb * denomina + sex + (1 + IQ_verb | schoolNR)", kr = TRUE,
          anova = TRUE, r2 = FALSE)
add_model("bdf_nested_kr", "bdf", "langPOST ~ IQ_verb + (1 | schoolNR/classNR)", kr = TRUE, profile = TRUE,
          r2 = FALSE)
add_model("scots_crossed_kr", "scotssec", "attain ~ verbal + sex + social + (1 | primary) + (1 | second)",
          kr = TRUE, anova = TRUE, profile = TRUE, r2 = FALSE)
cat("wrote", out_file, "with", length(models), "models\n")

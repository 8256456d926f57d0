# Reference values for the formula front end: lme4 and lm fits whose formulas
# use R's transformations (I(), log(), exp(), sqrt(), scale(), poly(),
# factor(), offset()) and ordered factors (polynomial contrasts).
#
# Run from the repository root:
#     Rscript tests/reference/make_reference_formula.R
# It reads the CSV files in data/ and writes tests/reference/formula.json.
# The data are prepared as mlmcourse.load() prepares them (see
# make_reference.R): id columns are text, other quoted columns are factors
# with levels in code-point order, "." in column names becomes "_".

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
source(file.path("tests", "reference", "course_data.R"))
out_file <- file.path("tests", "reference", "formula.json")

datasets <- list(hsb40 = load_course("hsb40"), sleepstudy = load_course("sleepstudy"),
                 exam = load_course("exam"))
stopifnot(nrow(datasets$hsb40) == 1977, nrow(datasets$sleepstudy) == 180, nrow(datasets$exam) == 4059)

# Ordered versions of two shipped factors (the Python side builds the same).
band_levels <- c("bottom 25%", "mid 50%", "top 25%")
datasets$exam$intake_ord <- factor(as.character(datasets$exam$intake), levels = band_levels, ordered = TRUE)
datasets$exam$vr_ord <- factor(as.character(datasets$exam$vr), levels = band_levels, ordered = TRUE)
stopifnot(!anyNA(datasets$exam$intake_ord), !anyNA(datasets$exam$vr_ord))
# A collinear copy for the rank-deficiency check.
datasets$hsb40$SES2 <- 2 * datasets$hsb40$SES
derived <- list(exam = list(intake_ord = "ordered intake, levels bottom 25% < mid 50% < top 25%",
                            vr_ord = "ordered vr, same levels"),
                hsb40 = list(SES2 = "2 * SES"))

# New data for predictions: a few rows with values inside and outside the
# training range, so scale(), poly() and the contrasts must reuse the fit's
# parameters to agree.
newdata <- list(
  hsb40 = data.frame(School = c("1317", "1906", "9586", "unseen"), SES = c(-2.5, 0, 0.7, 3.1),
                     Sector = factor(c("Catholic", "Public", "Public", "Catholic"), levels = c("Catholic", "Public")),
                     MEANSES = c(-0.2, 0.1, 0.3, 0), Size = c(500, 1200, 2000, 150),
                     stringsAsFactors = FALSE),
  sleepstudy = data.frame(Subject = c("308", "309", "372", "unseen"), Days = c(0, 2.5, 9, 12),
                          stringsAsFactors = FALSE),
  exam = data.frame(school = c("1", "2", "65", "unseen"), standLRT = c(-3, 0, 1.5, 4),
                    intake_ord = factor(c("mid 50%", "bottom 25%", "top 25%", "mid 50%"), levels = band_levels, ordered = TRUE),
                    vr_ord = factor(c("top 25%", "mid 50%", "bottom 25%", "bottom 25%"), levels = band_levels, ordered = TRUE),
                    sex = factor(c("F", "M", "F", "M"), levels = c("F", "M")),
                    stringsAsFactors = FALSE)
)

named <- function(x) as.list(x)

lmer_record <- function(data, formula, reml = TRUE, nd = newdata[[data]]) {
  d <- datasets[[data]]
  m <- lmer(as.formula(formula), data = d, REML = reml)
  list(
    kind = "lmer", data = data, formula = formula, reml = reml,
    fixef = named(fixef(m)), std_error = named(sqrt(diag(as.matrix(vcov(m))))),
    loglik = as.numeric(logLik(m)), sigma = sigma(m), nobs = nobs(m), theta = I(unname(getME(m, "theta"))),
    response_name = deparse(formula(m)[[2]]),
    contrasts_poly = if (data == "exam") unname(contr.poly(3)) else NULL,
    newdata = nd,
    predict_fixed = predict(m, newdata = nd, re.form = NA),
    predict_random = predict(m, newdata = nd, allow.new.levels = TRUE),
    fitted_head = unname(head(fitted(m), 5))
  )
}

lm_record <- function(data, formula) {
  d <- datasets[[data]]
  m <- lm(as.formula(formula), data = d)
  s <- coef(summary(m))
  cf <- coef(m)
  list(
    kind = "lm", data = data, formula = formula,
    names = I(names(cf)), dropped = I(names(cf)[is.na(cf)]),
    estimate = named(s[, "Estimate"]), std_error = named(s[, "Std. Error"]),
    sigma = summary(m)$sigma, df_resid = m$df.residual, nobs = nobs(m)
  )
}

models <- list(
  lmer_power = lmer_record("hsb40", "MathAch ~ SES + I(SES^2) + Sector + (1 | School)"),
  lmer_arith = lmer_record("hsb40", "MathAch ~ I(SES - MEANSES) + I(Size/1000) + I((SES + 1)^2) + (1 | School)"),
  lmer_log_response = lmer_record("sleepstudy", "log(Reaction) ~ Days + (Days | Subject)"),
  lmer_sqrt_exp = lmer_record("sleepstudy", "Reaction ~ sqrt(Days + 1) + exp(Days/10) + (1 | Subject)"),
  lmer_poly = lmer_record("sleepstudy", "Reaction ~ poly(Days, 2) + (1 | Subject)"),
  lmer_poly3 = lmer_record("sleepstudy", "Reaction ~ poly(Days, 3) + (Days | Subject)"),
  lmer_scale = lmer_record("hsb40", "MathAch ~ scale(SES) * Sector + log(Size) + (1 | School)"),
  lmer_factor = lmer_record("sleepstudy", "Reaction ~ factor(Days) + (1 | Subject)",
                             nd = data.frame(Subject = c("308", "309", "372", "unseen"), Days = c(0, 3, 9, 5),
                                             stringsAsFactors = FALSE)),
  lmer_ordered = lmer_record("exam", "normexam ~ standLRT + intake_ord + vr_ord + sex + (1 | school)"),
  lmer_ordered_ml = lmer_record("exam", "normexam ~ intake_ord * standLRT + (1 | school)", reml = FALSE),
  lmer_offset = lmer_record("hsb40", "MathAch ~ Sector + offset(2 * SES) + (1 | School)"),
  lmer_offset_ml = lmer_record("sleepstudy", "Reaction ~ 1 + offset(10 * Days) + (Days | Subject)", reml = FALSE),
  lmer_options = lmer_record("hsb40", "MathAch ~ poly(SES, 2, raw = TRUE) + scale(Size, scale = FALSE) + scale(MEANSES, center = FALSE) + (1 | School)"),
  lmer_poly_keyword = lmer_record("sleepstudy", "Reaction ~ poly(Days, degree = 2) + (1 | Subject)"),
  lm_power = lm_record("hsb40", "MathAch ~ SES + I(SES^2) + Sector"),
  lm_scale_log = lm_record("hsb40", "MathAch ~ scale(SES):Sector + log(Size)"),
  lm_poly_ordered = lm_record("exam", "normexam ~ poly(standLRT, 2) + intake_ord + sex"),
  lm_factor = lm_record("sleepstudy", "Reaction ~ Days + factor(Subject)"),
  lm_collinear = lm_record("hsb40", "MathAch ~ SES + SES2"),
  lm_log_response = lm_record("sleepstudy", "log(Reaction) ~ Days"),
  lm_raw_poly = lm_record("sleepstudy", "Reaction ~ poly(Days, 3, raw = TRUE)")
)

out <- list(
  meta = list(
    r_version = R.version.string,
    lme4_version = as.character(packageVersion("lme4")),
    jsonlite_version = as.character(packageVersion("jsonlite")),
    date = format(Sys.Date()),
    script = "tests/reference/make_reference_formula.R",
    precision = "15 significant digits",
    derived = derived,
    data_sha256 = named(vapply(c("hsb_students.csv", "hsb_schools.csv", "sleepstudy.csv", "exam.csv"),
                               function(f) unname(tools::md5sum(file.path(data_dir, f))), character(1)))
  ),
  models = models
)
names(out$meta)[names(out$meta) == "data_sha256"] <- "data_md5"
writeLines(toJSON(out, auto_unbox = TRUE, digits = I(15), pretty = TRUE, null = "null", na = "null"), out_file)
cat("wrote", out_file, "\n")

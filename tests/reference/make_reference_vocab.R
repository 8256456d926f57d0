# Reference values for the result vocabulary and lmer's public stages.
#
# Run from the repository root:
#     Rscript tests/reference/make_reference_vocab.R
# It reads data/sleepstudy.csv and writes tests/reference/vocab.json.
# R is not needed to run the tests: they read the committed JSON.
#
# What it records (lme4's own numbers, model fm1 <- lmer(Reaction ~ Days + (Days | Subject))):
#   * coef_table: summary(fm1) estimates, SEs and t values, and
#     confint(fm1, parm = "beta_", method = "Wald") at levels 0.95 and 0.90;
#   * design: dimensions and column sums of getME(fm1, "X") and getME(fm1, "Z"),
#     getME(fm1, "lower"), the nonzero entries of Lambda at two theta values
#     (Lambdat's x filled through Lind, as lme4 does);
#   * deviance: the REML and ML profiled deviance functions of mkLmerDevfun at
#     three theta values;
#   * refit: the fit to newresp = Reaction + 3 * Days^2 on the same rows (fixef,
#     theta, sigma, REML criterion), from lmer() on the data with the new
#     response. lme4's refit(fm1, newresp) is recorded too: in lme4 1.1-31 it
#     stops at a worse REML criterion (1860.27 against 1851.20), so the tests
#     compare with the direct fit.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

out_file <- file.path("tests", "reference", "vocab.json")
if (!file.exists(file.path("data", "sleepstudy.csv"))) {
  stop("run from the repository root: Rscript tests/reference/make_reference_vocab.R")
}
sleep <- read.csv(file.path("data", "sleepstudy.csv"), colClasses = c("numeric", "numeric", "character"))
sleep$Subject <- factor(sleep$Subject, levels = sort(unique(sleep$Subject), method = "radix"))
formula <- Reaction ~ Days + (Days | Subject)
fm1 <- lmer(formula, sleep)

coefs <- summary(fm1)$coefficients
wald <- function(level) {
  ci <- confint(fm1, parm = "beta_", method = "Wald", level = level)
  list(level = level, term = rownames(ci), conf_low = unname(ci[, 1]), conf_high = unname(ci[, 2]))
}
coef_table <- list(
  term = rownames(coefs), estimate = unname(coefs[, "Estimate"]),
  std_error = unname(coefs[, "Std. Error"]), statistic = unname(coefs[, "t value"]),
  p_value_normal = unname(2 * pnorm(-abs(coefs[, "t value"]))),
  intervals = list(wald(0.95), wald(0.90))
)

lambda_at <- function(reTrms, theta) {
  Lt <- reTrms$Lambdat
  Lt@x <- theta[reTrms$Lind]
  L <- as(t(Lt), "TsparseMatrix")
  list(theta = theta, i = L@i, j = L@j, x = L@x, dim = dim(L))
}
lf_reml <- lFormula(formula, sleep)
lf_ml <- lFormula(formula, sleep, REML = FALSE)
dev_reml <- do.call(mkLmerDevfun, lf_reml)
dev_ml <- do.call(mkLmerDevfun, lf_ml)
thetas <- list(c(1, 0, 1), c(0.5, 0.1, 0.3), unname(getME(fm1, "theta")))
X <- getME(fm1, "X")
Z <- getME(fm1, "Z")
design <- list(
  X_dim = dim(X), X_colnames = colnames(X), X_colsums = unname(colSums(X)),
  Z_dim = dim(Z), Z_colsums = unname(colSums(Z)), Z_nnz = length(Z@x),
  Z_first_rows = unname(as.matrix(Z[1:3, 1:4])),
  lower = unname(getME(fm1, "lower")),
  lambda = lapply(thetas[1:2], function(th) lambda_at(lf_reml$reTrms, th))
)
deviance <- lapply(thetas, function(th) list(theta = th, reml = dev_reml(th), ml = dev_ml(th)))

newresp <- sleep$Reaction + 3 * sleep$Days^2
sleep_new <- sleep
sleep_new$Reaction <- newresp
fm2 <- lmer(formula, sleep_new)
fm2_refit <- refit(fm1, newresp)
refit_record <- list(
  newresp = "Reaction + 3 * Days^2", fixef = as.list(fixef(fm2)), theta = unname(getME(fm2, "theta")),
  sigma = sigma(fm2), objective = unname(REMLcrit(fm2)),
  lme4_refit = list(theta = unname(getME(fm2_refit, "theta")), objective = unname(REMLcrit(fm2_refit)))
)

out <- list(
  meta = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
              jsonlite = as.character(packageVersion("jsonlite")), date = as.character(Sys.Date())),
  model = list(data = "sleepstudy", formula = deparse(formula), reml = TRUE),
  coef_table = coef_table, design = design, deviance = deviance, refit = refit_record
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), out_file)
cat("wrote", out_file, "\n")
